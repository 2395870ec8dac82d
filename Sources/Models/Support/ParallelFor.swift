import Dispatch

/// Runs body(0), ..., body(count - 1) on up to `count` threads and returns when all are done.
/// Kernels use it to split independent work (embedding shards), the cost oracle to run ranks
/// side by side; the caller guarantees that iterations touch disjoint memory, which is why the
/// closure need not be `Sendable`.
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    guard count > 1 else {
        if count == 1 { body(0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: count, execute: unsafeBitCast(body, to: (@Sendable (Int) -> Void).self))
    }
}
