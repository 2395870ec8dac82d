#ifndef MPITRAIN_CPUSHIM_H
#define MPITRAIN_CPUSHIM_H

// Swift has no spelling for a software prefetch; the embedding kernels issue one for rows a few
// lookups ahead, since random rows defeat the hardware prefetcher.
static inline void mpitrain_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// The same, for a row that is about to be written.
static inline void mpitrain_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

#endif
