/// The reference DLRM's schedule: linear warm-up from 0, constant, then polynomial decay
/// (power 2) to 0 over `decaySteps` from `decayStart`, holding the last rate after that.
public struct LearningRateSchedule: Codable, Hashable, Sendable {
    public var base: Float
    public var warmupSteps: Int
    public var decayStart: Int
    public var decaySteps: Int

    public init(base: Float, warmupSteps: Int = 0, decayStart: Int = 0, decaySteps: Int = 0) {
        self.base = base
        self.warmupSteps = warmupSteps
        self.decayStart = decayStart
        self.decaySteps = decaySteps
    }

    /// The rate of step `step` (0-based).
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return base * Float(step + 1) / Float(warmupSteps) }
        guard decaySteps > 0, step >= decayStart else { return base }
        let remaining = Float(max(decayStart + decaySteps - step, 0)) / Float(decaySteps)
        return base * remaining * remaining
    }
}
