import CPUShim
import Foundation

/// CRC32C (Castagnoli) checksums, on the CPU's CRC instruction where it has one: what a
/// checkpoint records of every file it writes, so a flipped bit, a cut file or a file from
/// another save is caught before it is trained on.
public enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (the checksum of the bytes before them).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return mpitrain_crc32c(crc, base, bytes.count)
    }

    public static func checksum(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { checksum($0) }
    }
}
