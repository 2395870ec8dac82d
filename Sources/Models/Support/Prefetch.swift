import CPUShim

/// Asks for every cache line of a row of `width` floats: kernels that visit rows in a random
/// order (embedding lookups, graph neighbours) request them a few steps ahead.
@inline(__always)
func prefetchRow(_ row: UnsafePointer<Float>, width: Int, forWrite: Bool = false) {
    var c = 0
    while c < width {
        if forWrite { mpitrain_prefetch_for_write(row + c) } else { mpitrain_prefetch(row + c) }
        c += 16
    }
}
