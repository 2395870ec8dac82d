import MPIShim
