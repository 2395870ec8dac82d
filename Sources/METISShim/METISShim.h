#ifndef MPITRAIN_METISSHIM_H
#define MPITRAIN_METISSHIM_H

// METIS imports into Swift as it is (Debian builds it with 32-bit idx_t and real_t); the header
// only names it for the module map. Debian ships no pkg-config file for it.
#include <metis.h>

#endif
