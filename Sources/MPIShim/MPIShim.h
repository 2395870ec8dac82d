#ifndef MPITRAIN_MPISHIM_H
#define MPITRAIN_MPISHIM_H

#include <mpi.h>

// OpenMPI defines its handles as casts of global addresses, MPICH as casts of integers; Swift
// cannot import either kind of macro, so each handle the communicator uses is a one-line
// function. Integer macros (MPI_SUCCESS, MPI_ERR_*, MPI_UNDEFINED, MPI_THREAD_*) import as
// they are and are not shimmed.

// Communicators.
static inline MPI_Comm MPIShim_COMM_WORLD(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm MPIShim_COMM_SELF(void) { return MPI_COMM_SELF; }
static inline MPI_Comm MPIShim_COMM_NULL(void) { return MPI_COMM_NULL; }

// Predefined datatypes, one per Swift scalar the project sends.
static inline MPI_Datatype MPIShim_FLOAT(void) { return MPI_FLOAT; }
static inline MPI_Datatype MPIShim_DOUBLE(void) { return MPI_DOUBLE; }
static inline MPI_Datatype MPIShim_INT32_T(void) { return MPI_INT32_T; }
static inline MPI_Datatype MPIShim_INT64_T(void) { return MPI_INT64_T; }
static inline MPI_Datatype MPIShim_UINT32_T(void) { return MPI_UINT32_T; }
static inline MPI_Datatype MPIShim_UINT64_T(void) { return MPI_UINT64_T; }
static inline MPI_Datatype MPIShim_UINT8_T(void) { return MPI_UINT8_T; }

// Reduction operations.
static inline MPI_Op MPIShim_SUM(void) { return MPI_SUM; }
static inline MPI_Op MPIShim_MAX(void) { return MPI_MAX; }
static inline MPI_Op MPIShim_MIN(void) { return MPI_MIN; }
static inline MPI_Op MPIShim_PROD(void) { return MPI_PROD; }
static inline MPI_Op MPIShim_OP_NULL(void) { return MPI_OP_NULL; }

// Error handlers: MPI_ERRORS_RETURN turns failures into return codes the Swift layer throws.
static inline MPI_Errhandler MPIShim_ERRORS_RETURN(void) { return MPI_ERRORS_RETURN; }

// Requests and statuses.
static inline MPI_Request MPIShim_REQUEST_NULL(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *MPIShim_STATUS_IGNORE(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *MPIShim_STATUSES_IGNORE(void) { return MPI_STATUSES_IGNORE; }

// MPI_IN_PLACE is the address 1: a marker, not a buffer.
static inline void *MPIShim_IN_PLACE(void) { return MPI_IN_PLACE; }

// MPI_ANY_SOURCE and MPI_ANY_TAG are plain integers but defined through casts Swift skips.
static inline int MPIShim_ANY_SOURCE(void) { return MPI_ANY_SOURCE; }
static inline int MPIShim_ANY_TAG(void) { return MPI_ANY_TAG; }

#endif
