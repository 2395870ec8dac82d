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

#endif
