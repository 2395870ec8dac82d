import Foundation

extension Communicator {
    /// A barrier for ranks with nothing to do: every rank but 0 sleeps between polls (MPI's own
    /// barrier spins, taking a core from the ranks still working on an oversubscribed node);
    /// rank 0 releases them when it arrives.
    public func sleepingBarrier(poll: Duration = .milliseconds(5)) throws(MPIError) {
        guard size > 1 else { return }
        if rank == 0 {
            for peer in 1..<size { try send([UInt8(1)], to: peer, tag: Self.releaseTag) }
            return
        }
        var token: [UInt8] = [0]
        try token.withUnsafeMutableBufferPointer { buffer throws(MPIError) in
            var release = try irecv(into: buffer, from: 0, tag: Self.releaseTag)
            while !(try release.test()) { Thread.sleep(forTimeInterval: poll.seconds) }
            try release.wait()
        }
    }

    private static let releaseTag = 0x1D1E
}
