/// A zero-filled (rows, width) Float buffer indexed by node, owned by one stage.
final class NodeBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let rows: Int
    let width: Int

    init(rows: Int, width: Int) {
        self.rows = rows
        self.width = width
        pointer = HugePageMemory.allocate(Float.self, capacity: rows * width)
    }

    deinit { HugePageMemory.deallocate(pointer) }

    /// The first element of `row`.
    @inline(__always) func row(_ row: Int) -> UnsafeMutablePointer<Float> { pointer + row * width }

    func zero() { pointer.update(repeating: 0, count: rows * width) }

    func zero(_ rows: Range<Int>) { row(rows.lowerBound).update(repeating: 0, count: rows.count * width) }
}
