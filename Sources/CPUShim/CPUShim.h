#ifndef MPITRAIN_CPUSHIM_H
#define MPITRAIN_CPUSHIM_H

// Swift has no spelling for a software prefetch; the embedding kernels issue one for rows a few
// lookups ahead, since random rows defeat the hardware prefetcher.
static inline void mpitrain_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// The same, for a row that is about to be written.
static inline void mpitrain_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/// CRC32C (Castagnoli), the checksum of checkpoint files: the SSE4.2 or ARMv8 CRC instruction
/// where the CPU has it (several GB/s), a bitwise loop elsewhere. `crc` is the running value
/// (0 to start); the result feeds the next call over the following bytes.
static inline uint32_t mpitrain_crc32c_bitwise(uint32_t crc, const uint8_t *bytes, size_t count) {
    for (size_t i = 0; i < count; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static inline uint32_t mpitrain_crc32c_hardware(uint32_t crc, const uint8_t *bytes, size_t count) {
    uint64_t wide = crc;
    for (; count >= 8; count -= 8, bytes += 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = __builtin_ia32_crc32di(wide, word);
    }
    uint32_t narrow = (uint32_t)wide;
    for (; count > 0; count--, bytes++) narrow = __builtin_ia32_crc32qi(narrow, *bytes);
    return narrow;
}
static inline int mpitrain_crc32c_has_hardware(void) { return __builtin_cpu_supports("sse4.2"); }
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
static inline uint32_t mpitrain_crc32c_hardware(uint32_t crc, const uint8_t *bytes, size_t count) {
    for (; count >= 8; count -= 8, bytes += 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        crc = __crc32cd(crc, word);
    }
    for (; count > 0; count--, bytes++) crc = __crc32cb(crc, *bytes);
    return crc;
}
static inline int mpitrain_crc32c_has_hardware(void) { return 1; }
#else
static inline uint32_t mpitrain_crc32c_hardware(uint32_t crc, const uint8_t *bytes, size_t count) {
    return mpitrain_crc32c_bitwise(crc, bytes, count);
}
static inline int mpitrain_crc32c_has_hardware(void) { return 0; }
#endif

static inline uint32_t mpitrain_crc32c(uint32_t crc, const void *bytes, size_t count) {
    crc = ~crc;
    crc = mpitrain_crc32c_has_hardware() ? mpitrain_crc32c_hardware(crc, (const uint8_t *)bytes, count)
                                         : mpitrain_crc32c_bitwise(crc, (const uint8_t *)bytes, count);
    return ~crc;
}

/// The vector instructions this build may use, as the compiler's target gives them (Package.swift
/// picks the target CPU).
static inline const char *mpitrain_build_isa(void) {
#if defined(__AVX512F__)
    return "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
    return "AVX2 and FMA";
#elif defined(__AVX2__)
    return "AVX2";
#elif defined(__AVX__)
    return "AVX";
#elif defined(__x86_64__)
    return "SSE2";
#elif defined(__aarch64__)
    return "NEON";
#else
    return "no vector extension";
#endif
}

/// Whether this CPU has every extension the build was compiled for: a binary copied to an older
/// CPU than the one it was built for stops with a line instead of an illegal instruction.
static inline int mpitrain_cpu_runs_build(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int runs = 1;
#if defined(__AVX__)
    runs = runs && __builtin_cpu_supports("avx");
#endif
#if defined(__AVX2__)
    runs = runs && __builtin_cpu_supports("avx2");
#endif
#if defined(__FMA__)
    runs = runs && __builtin_cpu_supports("fma");
#endif
#if defined(__BMI2__)
    runs = runs && __builtin_cpu_supports("bmi2");
#endif
#if defined(__AVX512F__)
    runs = runs && __builtin_cpu_supports("avx512f");
#endif
#if defined(__AVX512BW__)
    runs = runs && __builtin_cpu_supports("avx512bw");
#endif
#if defined(__AVX512DQ__)
    runs = runs && __builtin_cpu_supports("avx512dq");
#endif
#if defined(__AVX512VL__)
    runs = runs && __builtin_cpu_supports("avx512vl");
#endif
    return runs;
#else
    return 1;
#endif
}

/// Stops the process, with one line, when this CPU lacks what the build was compiled for. The
/// line is written from here, with no vector code of its own, before anything else runs.
static inline void mpitrain_require_cpu_of_build(void) {
    if (mpitrain_cpu_runs_build()) return;
    const char *parts[3] = {"mpitrain: error: this mpitrain was compiled for ", mpitrain_build_isa(),
                            ", which this CPU lacks; build it on this machine (./launch build), or for any x86-64 with "
                            "MPITRAIN_TARGET_CPU=x86-64 ./launch build\n"};
    for (int i = 0; i < 3; i++) (void)!write(2, parts[i], strlen(parts[i]));
    _exit(1);
}

#endif
