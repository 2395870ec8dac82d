#ifndef MPITRAIN_MPIREFERENCE_H
#define MPITRAIN_MPIREFERENCE_H

#include <mpi.h>
#include <time.h>

// `bench comm --reference`: the collectives the benchmark times, called on plain MPI from C,
// timed exactly as the Swift path times them, so the ratio of the two is the communicator's
// cost and nothing else.

enum {
    MPIReference_ALLREDUCE = 0,
    MPIReference_ALLTOALL = 1,
    MPIReference_ALLTOALLV = 2,
    MPIReference_BROADCAST = 3,
    MPIReference_PING_PONG = 4,
};

// Seconds on the monotonic clock; both paths time with it.
static inline double MPIReference_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

// Seconds spent in `iterations` calls of `operation` on a `bytes`-byte message, each call timed
// alone with a barrier after it outside the timed region (as the OSU benchmarks time), after
// `warmup` untimed calls. The message is laid out as the Swift path lays it: allreduce sums
// bytes / 4 floats in place in `recv`; alltoall(v) sends bytes / size bytes to each rank from
// `send` into `recv` (alltoallv through `counts` and `displacements`, `size` ints each);
// broadcast sends `recv` from rank 0; ping-pong goes from rank 0 to rank 1 and back. Returns
// -1 when an MPI call fails.
static inline double MPIReference_time(int operation, void *send, void *recv, int bytes, const int *counts,
                                       const int *displacements, int warmup, int iterations, MPI_Comm comm) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int floats = bytes / 4 > 0 ? bytes / 4 : 1, part = bytes / size > 0 ? bytes / size : 1;
    double total = 0;
    for (int i = 0; i < warmup + iterations; i++) {
        int status = MPI_SUCCESS;
        double start = MPIReference_seconds();
        switch (operation) {
        case MPIReference_ALLREDUCE:
            status = MPI_Allreduce(MPI_IN_PLACE, recv, floats, MPI_FLOAT, MPI_SUM, comm);
            break;
        case MPIReference_ALLTOALL:
            status = MPI_Alltoall(send, part, MPI_UINT8_T, recv, part, MPI_UINT8_T, comm);
            break;
        case MPIReference_ALLTOALLV:
            status = MPI_Alltoallv(send, counts, displacements, MPI_UINT8_T, recv, counts, displacements, MPI_UINT8_T, comm);
            break;
        case MPIReference_BROADCAST:
            status = MPI_Bcast(recv, bytes, MPI_UINT8_T, 0, comm);
            break;
        case MPIReference_PING_PONG:
            if (rank == 0) {
                status = MPI_Send(send, bytes, MPI_UINT8_T, 1, 1, comm);
                if (status == MPI_SUCCESS) status = MPI_Recv(recv, bytes, MPI_UINT8_T, 1, 1, comm, MPI_STATUS_IGNORE);
            } else if (rank == 1) {
                status = MPI_Recv(recv, bytes, MPI_UINT8_T, 0, 1, comm, MPI_STATUS_IGNORE);
                if (status == MPI_SUCCESS) status = MPI_Send(send, bytes, MPI_UINT8_T, 0, 1, comm);
            }
            break;
        }
        double elapsed = MPIReference_seconds() - start;
        if (status != MPI_SUCCESS || MPI_Barrier(comm) != MPI_SUCCESS) return -1;
        if (i >= warmup) total += elapsed;
    }
    return total;
}

#endif
