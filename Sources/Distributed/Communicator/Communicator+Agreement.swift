import Models

extension Communicator {
    /// Runs `body` on every rank and agrees on the outcome: when any rank fails, every rank
    /// throws the lowest failing rank's error text as a `ConfigError`, so a job stops cleanly
    /// with one message instead of leaving the other ranks waiting in the next collective.
    public func agreeing<R>(_ body: () throws -> R) throws -> R {
        var outcome: Result<R, Error>
        do { outcome = .success(try body()) } catch { outcome = .failure(error) }
        var mine = Int64(size)
        if case .failure = outcome { mine = Int64(rank) }
        let first = try allreduce(mine, .min)
        guard first < Int64(size) else { return try outcome.get() }
        var text: [UInt8] = []
        if case .failure(let error) = outcome, Int64(rank) == first { text = Array("\(error)".utf8) }
        throw ConfigError(String(decoding: try broadcast(text, root: Int(first)), as: UTF8.self))
    }
}
