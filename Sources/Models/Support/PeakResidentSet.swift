import Foundation

/// The most memory this process has held resident since it started, in bytes (`getrusage`'s
/// `ru_maxrss` for `RUSAGE_SELF`); 0 if the call fails.
public func peakResidentSetBytes() -> UInt64 {
    var usage = rusage()
    #if canImport(Darwin)
    guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
    return UInt64(max(usage.ru_maxrss, 0))  // bytes on Darwin
    #else
    // Glibc imports RUSAGE_SELF as an enum case, but getrusage takes its raw int.
    guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
    return UInt64(max(usage.ru_maxrss, 0)) * 1024  // KiB on Linux
    #endif
}
