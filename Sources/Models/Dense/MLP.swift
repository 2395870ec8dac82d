/// A fully connected layer y = x·W + b with W stored (in, out) in a `ParameterBuffer`.
public struct Linear: Sendable {
    public let inputs: Int
    public let outputs: Int
    /// Offsets of W (inputs × outputs) and b (outputs) in the parameter buffer.
    public let weightOffset: Int
    public let biasOffset: Int

    public var parameterCount: Int { inputs * outputs + outputs }

    /// The reference DLRM initialisation: W ~ N(0, sqrt(2 / (in + out))), b ~ N(0, sqrt(1 / out)).
    func initialize(_ parameters: ParameterBuffer, _ random: inout SplitMix64) {
        let weightScale = (2 / Double(inputs + outputs)).squareRoot()
        for i in 0..<inputs * outputs { parameters.values[weightOffset + i] = Float(random.nextGaussian() * weightScale) }
        let biasScale = (1 / Double(outputs)).squareRoot()
        for i in 0..<outputs { parameters.values[biasOffset + i] = Float(random.nextGaussian() * biasScale) }
    }
}

/// A multilayer perceptron from a spec like `13-512-256-64`: ReLU after every layer but,
/// optionally, the last (whose raw output then feeds a loss, as the top MLP's logit does).
/// Buffers for one batch are kept between forward and backward, sized for the largest batch.
public final class MLP {
    public let sizes: [Int]
    public let layers: [Linear]
    public let reluOnLast: Bool
    public let parameters: ParameterBuffer
    /// Time inside sgemm alone, for setting the layers' time against their BLAS calls.
    public var blasTimer = KernelTimer()

    private var capacity = 0
    /// Post-activation outputs of every layer, (capacity, sizes[i + 1]).
    private var outputs: [UnsafeMutablePointer<Float>] = []
    private var gradientA: UnsafeMutablePointer<Float>?
    private var gradientB: UnsafeMutablePointer<Float>?

    /// Layers laid out from `offset` in `parameters` (shared with other MLPs of one model).
    public init(sizes: [Int], reluOnLast: Bool, parameters: ParameterBuffer, offset: Int) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MLP sizes \(sizes)")
        self.sizes = sizes
        self.reluOnLast = reluOnLast
        self.parameters = parameters
        var layers: [Linear] = []
        var next = offset
        for (inputs, outputs) in zip(sizes, sizes.dropFirst()) {
            layers.append(Linear(inputs: inputs, outputs: outputs, weightOffset: next, biasOffset: next + inputs * outputs))
            next += inputs * outputs + outputs
        }
        self.layers = layers
        precondition(next <= parameters.count, "MLP parameters overrun the buffer")
    }

    deinit { release() }

    public static func parameterCount(sizes: [Int]) -> Int {
        zip(sizes, sizes.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 + $1.1 }
    }

    public var parameterCount: Int { Self.parameterCount(sizes: sizes) }
    public var inputWidth: Int { sizes[0] }
    public var outputWidth: Int { sizes[sizes.count - 1] }

    public func initialize(_ random: inout SplitMix64) {
        for layer in layers { layer.initialize(parameters, &random) }
    }

    /// The last forward's output, (rows, outputWidth).
    public var output: UnsafeMutablePointer<Float> { outputs[outputs.count - 1] }

    /// Runs the layers on `input` (rows, inputWidth); the result is `output`. `progress` runs
    /// between layers (an exchange in flight can move on there).
    public func forward(_ input: UnsafePointer<Float>, rows: Int, progress: () -> Void = {}) {
        reserve(rows)
        var x = input
        for (i, layer) in layers.enumerated() {
            if i > 0 { progress() }
            let y = outputs[i], w = parameters.values + layer.weightOffset, b = parameters.values + layer.biasOffset
            blasTimer.measure { matmulForward(y, x, w, rows: rows, k: layer.inputs, n: layer.outputs) }
            let relu = i < layers.count - 1 || reluOnLast
            for r in 0..<rows { addBiasAndActivate(y + r * layer.outputs, b, width: layer.outputs, relu: relu) }
            x = UnsafePointer(y)
        }
    }

    /// Accumulates parameter gradients from dOutput (rows, outputWidth) of the last forward on
    /// the same `input`; writes dInput (rows, inputWidth) when given. dOutput is not modified.
    /// `progress` runs between layers.
    public func backward(_ input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>, rows: Int,
                         inputGradient: UnsafeMutablePointer<Float>?, progress: () -> Void = {}) {
        precondition(rows <= capacity, "backward on more rows than the last forward")
        guard let gradientA, let gradientB else { return }
        // dZ overwrites dY in place (elementwise), except for the caller's dOutput; dX goes to
        // the other buffer and becomes the next layer's dY.
        var dY = outputGradient
        var scratch = (gradientA, gradientB)
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            if i < layers.count - 1 { progress() }
            let layer = layers[i], n = layer.outputs
            let y = outputs[i]
            let dW = parameters.gradients + layer.weightOffset, db = parameters.gradients + layer.biasOffset
            // dZ = dY masked by ReLU; db += column sums of dZ.
            let dZ = scratch.0
            let relu = i < layers.count - 1 || reluOnLast
            for r in 0..<rows { maskAndSumGradient(dZ + r * n, db, dY + r * n, y + r * n, width: n, relu: relu) }
            let x = i == 0 ? input : UnsafePointer(outputs[i - 1])
            let dX = i == 0 ? inputGradient : scratch.1
            blasTimer.measure {
                matmulBackwardWeight(dW, x, dZ, rows: rows, k: layer.inputs, n: n)
                if let dX { matmulBackwardInput(dX, dZ, parameters.values + layer.weightOffset, rows: rows, k: layer.inputs, n: n) }
            }
            dY = UnsafePointer(scratch.1)
            scratch = (scratch.1, scratch.0)
        }
    }

    /// Grows the per-batch buffers to hold `rows` rows.
    private func reserve(_ rows: Int) {
        guard rows > capacity else { return }
        release()
        capacity = rows
        outputs = sizes.dropFirst().map { width in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
            buffer.initialize(repeating: 0, count: rows * width)
            return buffer
        }
        let widest = sizes.max() ?? 1
        for _ in 0..<2 {
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: rows * widest)
            buffer.initialize(repeating: 0, count: rows * widest)
            if gradientA == nil { gradientA = buffer } else { gradientB = buffer }
        }
    }

    private func release() {
        for buffer in outputs { buffer.deallocate() }
        outputs = []
        gradientA?.deallocate()
        gradientB?.deallocate()
        gradientA = nil
        gradientB = nil
    }
}

/// y = max(y + b, 0) (or y + b without `relu`) over one row, sixteen lanes at a time.
@inline(__always)
private func addBiasAndActivate(_ y: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, width: Int, relu: Bool) {
    var c = 0
    let zero = SIMD16<Float>()
    while c + 16 <= width {
        var v = UnsafeRawPointer(y + c).loadUnaligned(as: SIMD16<Float>.self) + UnsafeRawPointer(b + c).loadUnaligned(as: SIMD16<Float>.self)
        if relu { v = v.replacing(with: zero, where: v .< zero) }
        UnsafeMutableRawPointer(y + c).storeBytes(of: v, as: SIMD16<Float>.self)
        c += 16
    }
    while c < width {
        y[c] = relu ? max(y[c] + b[c], 0) : y[c] + b[c]
        c += 1
    }
}

/// dZ = dY where the ReLU output is positive (all of dY without `relu`); db += dZ. One row.
@inline(__always)
private func maskAndSumGradient(_ dZ: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>, _ dY: UnsafePointer<Float>,
                                _ y: UnsafePointer<Float>, width: Int, relu: Bool) {
    var c = 0
    let zero = SIMD16<Float>()
    while c + 16 <= width {
        var g = UnsafeRawPointer(dY + c).loadUnaligned(as: SIMD16<Float>.self)
        if relu { g = g.replacing(with: zero, where: UnsafeRawPointer(y + c).loadUnaligned(as: SIMD16<Float>.self) .<= zero) }
        UnsafeMutableRawPointer(dZ + c).storeBytes(of: g, as: SIMD16<Float>.self)
        let sum = UnsafeRawPointer(db + c).loadUnaligned(as: SIMD16<Float>.self) + g
        UnsafeMutableRawPointer(db + c).storeBytes(of: sum, as: SIMD16<Float>.self)
        c += 16
    }
    while c < width {
        let g = !relu || y[c] > 0 ? dY[c] : 0
        dZ[c] = g
        db[c] += g
        c += 1
    }
}
