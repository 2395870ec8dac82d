import MPIShim

/// Where each rank's part sits in a buffer: counts and 0-based displacements in elements, the
/// displacements by default the running sum of the counts (MPI's `VBuffer` layout).
public struct Chunks: Sendable, Hashable {
    public var counts: [Int]
    public var displacements: [Int]

    /// Parts laid end to end.
    public init(counts: [Int]) {
        self.counts = counts
        var running = 0
        displacements = counts.map { count in
            defer { running += count }
            return running
        }
    }

    public init(counts: [Int], displacements: [Int]) {
        self.counts = counts
        self.displacements = displacements
    }

    /// Elements a buffer needs to hold every part.
    public var extent: Int { zip(counts, displacements).map { $0 + $1 }.max() ?? 0 }

    /// The indices of `rank`'s part.
    public subscript(rank: Int) -> Range<Int> { displacements[rank]..<(displacements[rank] + counts[rank]) }

    /// Hands counts and displacements to MPI as `int` arrays, after checking them against a
    /// communicator of `size` ranks and a buffer of `capacity` elements; no heap allocation.
    func withMPIArrays<R>(
        size: Int, capacity: Int, _ call: StaticString, role: String,
        _ body: (UnsafePointer<Int32>, UnsafePointer<Int32>) throws(MPIError) -> R
    ) throws(MPIError) -> R {
        try check(size: size, capacity: capacity, call, role: role)
        return try withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * max(size, 1)) { scratch throws(MPIError) in
            write(into: scratch.baseAddress!, size: size)
            return try body(UnsafePointer(scratch.baseAddress!), UnsafePointer(scratch.baseAddress! + size))
        }
    }

    /// Counts then displacements as `int`s at `base` (2 × size of them).
    func write(into base: UnsafeMutablePointer<Int32>, size: Int) {
        for r in 0..<size {
            base[r] = Int32(truncatingIfNeeded: counts[r])
            base[size + r] = Int32(truncatingIfNeeded: displacements[r])
        }
    }

    /// Checks the parts against a communicator of `size` ranks and a buffer of `capacity` elements.
    func check(size: Int, capacity: Int, _ call: StaticString, role: String) throws(MPIError) {
        guard counts.count == size, displacements.count == size else {
            throw MPIError(call: "\(call)", errorClass: MPI_ERR_ARG,
                           reason: "MPI_ERR_ARG: \(role) chunks name \(counts.count) counts and \(displacements.count) displacements for \(size) ranks")
        }
        for r in 0..<size {
            let count = counts[r], start = displacements[r]
            if count < 0 || start < 0 {
                throw MPIError(call: "\(call)", errorClass: MPI_ERR_COUNT,
                               reason: "MPI_ERR_COUNT: \(role) chunk of rank \(r) has count \(count) at displacement \(start)")
            }
            if start + count > capacity {
                throw MPIError(call: "\(call)", errorClass: MPI_ERR_BUFFER,
                               reason: "MPI_ERR_BUFFER: \(role) chunk of rank \(r) ends at element \(start + count) but the buffer holds \(capacity)")
            }
            _ = try mpiCount(start + count, call)
        }
    }

    /// Elements of all parts except `rank`'s: what crosses to or from other ranks.
    func countExcluding(_ rank: Int) -> Int {
        var total = 0
        for (r, count) in counts.enumerated() where r != rank { total += count }
        return total
    }
}

/// Values from every rank laid end to end, with where each rank's part is.
public struct PerRank<T: MPIScalar>: Sendable {
    public var values: [T]
    public var chunks: Chunks

    /// The part that came from (or goes to) `rank`.
    public subscript(rank: Int) -> ArraySlice<T> { values[chunks[rank]] }
}
