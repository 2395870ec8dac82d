import Models

/// The small networks of DreamShard run on Swift arrays of a few hundred rows; these wrap the
/// pointer-based MLP calls for them.
extension MLP {
    /// Runs the layers on `input` (rows, inputWidth) and returns a copy of the output.
    func forward(_ input: [Float], rows: Int) -> [Float] {
        guard rows > 0 else { return [] }
        input.withUnsafeBufferPointer { forward($0.baseAddress!, rows: rows) }
        return Array(UnsafeBufferPointer(start: output, count: rows * outputWidth))
    }

    /// Accumulates parameter gradients for the last forward on `input` and returns dInput.
    @discardableResult
    func backward(_ input: [Float], outputGradient: [Float], rows: Int, wantInputGradient: Bool = true) -> [Float] {
        guard rows > 0 else { return [] }
        var inputGradient = [Float](repeating: 0, count: wantInputGradient ? rows * inputWidth : 0)
        input.withUnsafeBufferPointer { x in
            outputGradient.withUnsafeBufferPointer { dy in
                inputGradient.withUnsafeMutableBufferPointer { dx in
                    backward(x.baseAddress!, outputGradient: dy.baseAddress!, rows: rows, inputGradient: wantInputGradient ? dx.baseAddress! : nil)
                }
            }
        }
        return inputGradient
    }
}

extension ParameterBuffer {
    /// One Adam step on the accumulated gradients, then the gradients are cleared.
    func step(_ adam: inout Adam) {
        var values = valueArray
        adam.update(&values, gradients: gradientArray)
        values.withUnsafeBufferPointer { self.values.update(from: $0.baseAddress!, count: count) }
        zeroGradients()
    }
}

/// Sums of `width`-wide rows of `rows` over each group of row indices (an empty group sums to 0).
func groupSums(_ rows: [Float], width: Int, groups: [[Int]]) -> [Float] {
    var sums = [Float](repeating: 0, count: groups.count * width)
    for (g, members) in groups.enumerated() {
        for i in members { for j in 0..<width { sums[g * width + j] += rows[i * width + j] } }
    }
    return sums
}
