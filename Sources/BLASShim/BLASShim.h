#ifndef MPITRAIN_BLASSHIM_H
#define MPITRAIN_BLASSHIM_H

// CBLAS (and openblas_set_num_threads) imports into Swift as it is: nothing to shim, the
// header only names it for the module map.
#include <cblas.h>

#endif
