import MPIShim

// MPI's out-parameters take handle slots. OpenMPI's handles are pointers, which Swift imports
// as optionals; MPICH's are integers (Package.swift defines MPICH when it builds against it).
#if MPICH
typealias CommSlot = MPI_Comm
typealias RequestSlot = MPI_Request
typealias OpSlot = MPI_Op

/// The handle in `slot`: an MPICH handle is never nil.
func unwrapHandle<Handle>(_ slot: Handle) -> Handle? { slot }
#else
typealias CommSlot = MPI_Comm?
typealias RequestSlot = MPI_Request?
typealias OpSlot = MPI_Op?

/// The handle in `slot`, nil when MPI left it nil.
func unwrapHandle<Handle>(_ slot: Handle?) -> Handle? { slot }
#endif
