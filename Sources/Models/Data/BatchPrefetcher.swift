import Foundation

/// Reads batches ahead on a thread of its own, up to `depth` ready at a time, so that
/// parsing overlaps training. The reader is used only by that thread once the first batch
/// is asked for; an error, or the end of the data, reaches the caller at the batch it stopped
/// and at every call after. The owner calls `stop` when done with it.
final class BatchPrefetcher: @unchecked Sendable {
    /// A batch, and the reader's state just after reading it.
    struct Read {
        var batch: ClickBatch?
        var heldOutCount: Int
        var skippedRows: Int
    }

    private let reader: any ClickBatchReader
    private let size: Int
    private let depth: Int
    private let condition = NSCondition()
    private var ready: [Result<Read, Error>] = []
    /// What ended the reading: the end of the data or an error.
    private var last: Result<Read, Error>?
    private var started = false, stopping = false, running = false

    init(reader: any ClickBatchReader, size: Int, depth: Int = 2) {
        self.reader = reader
        self.size = size
        self.depth = depth
    }

    /// The next batch, waiting for it if it is not read yet.
    func next() throws -> Read {
        condition.lock()
        defer { condition.unlock() }
        if !started {
            started = true
            running = true
            let thread = Thread { [self] in produce() }
            thread.name = "mpitrain data"
            thread.start()
        }
        while ready.isEmpty {
            if !running, let last { return try last.get() }
            condition.wait()
        }
        let result = ready.removeFirst()
        condition.broadcast()
        return try result.get()
    }

    /// Asks the thread to finish the batch it reads, and waits for it.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }

    private func produce() {
        while true {
            condition.lock()
            while ready.count >= depth && !stopping { condition.wait() }
            let stop = stopping
            condition.unlock()
            if stop { break }
            let result = Result { () throws -> Read in
                let batch = try reader.nextBatch(size: size)
                return Read(batch: batch, heldOutCount: reader.heldOut.count, skippedRows: reader.skippedRows)
            }
            let more = if case .success(let read) = result { read.batch != nil } else { false }
            condition.lock()
            ready.append(result)
            if !more { last = result }
            condition.broadcast()
            condition.unlock()
            if !more { break }
        }
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }
}
