import Foundation

/// Zero-filled storage for large, randomly accessed arrays (embedding tables, node features):
/// aligned to 2 MiB and advised for transparent huge pages, so random rows do not each cost a
/// TLB miss. Small requests get ordinary memory. Free with `deallocate`.
public enum HugePageMemory {
    static let hugePage = 2 << 20

    public static func allocate<T>(_ type: T.Type, capacity: Int) -> UnsafeMutablePointer<T> {
        let bytes = max(capacity, 1) * MemoryLayout<T>.stride
        let huge = bytes >= hugePage
        let alignment = huge ? hugePage : 64
        let rounded = (bytes + alignment - 1) / alignment * alignment
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, alignment, rounded) == 0, let raw else { fatalError("out of memory: \(rounded) bytes") }
        if huge { _ = madvise(raw, rounded, MADV_HUGEPAGE) }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: rounded)
        return raw.bindMemory(to: T.self, capacity: capacity)
    }

    public static func deallocate<T>(_ pointer: UnsafeMutablePointer<T>) { free(pointer) }
}
