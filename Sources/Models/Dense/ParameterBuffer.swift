/// Dense parameters and their gradients in two flat buffers: one allreduce averages every
/// gradient, one loop updates every parameter, one write saves them.
public final class ParameterBuffer {
    public let count: Int
    public let values: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        values = .allocate(capacity: max(count, 1))
        values.initialize(repeating: 0, count: max(count, 1))
        gradients = .allocate(capacity: max(count, 1))
        gradients.initialize(repeating: 0, count: max(count, 1))
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
    }

    public var valueArray: [Float] {
        get { Array(UnsafeBufferPointer(start: values, count: count)) }
        set {
            precondition(newValue.count == count, "\(newValue.count) values for \(count) parameters")
            values.update(from: newValue, count: count)
        }
    }

    public var gradientArray: [Float] { Array(UnsafeBufferPointer(start: gradients, count: count)) }

    public func zeroGradients() { gradients.update(repeating: 0, count: count) }
}
