import MPIShim

/// How ranks' sketches are summed. Both give identical bits.
public enum SketchSum: String, CaseIterable, Sendable {
    /// Fields widened to UInt64, `MPI_SUM`, then reduced mod p: plain MPI, twice the bytes.
    case widened
    /// A user-defined MPI operation adding UInt32 fields mod p: the sketch's own bytes.
    case modular
}

extension ReduceOp {
    /// Element-wise addition mod p of UInt32 residues (`MPI_Op_create`, commutative); created on
    /// first use, after `MPI_Init`.
    static let modPrimeSum: ReduceOp = {
        var op: OpSlot = MPIShim_OP_NULL()
        let status = MPI_Op_create({ input, inout_, length, _ in
            guard let input, let inout_, let length else { return }
            let a = input.assumingMemoryBound(to: UInt32.self), b = inout_.assumingMemoryBound(to: UInt32.self)
            for i in 0..<Int(length.pointee) { b[i] = ModPrime.add(a[i], b[i]) }
        }, 1, &op)
        guard status == MPI_SUCCESS, let created = unwrapHandle(op), created != MPIShim_OP_NULL() else {
            preconditionFailure("MPI_Op_create failed with code \(status)")
        }
        return ReduceOp(raw: created, description: "sum mod p")
    }()
}

extension Communicator {
    /// Replaces `sketch` on every rank with the sum of every rank's sketch: the sketch of the
    /// union of their multisets. Throws on every rank if any rank's sketch has another shape
    /// or seed.
    public func allreduce(_ sketch: inout FermatSketch, using sum: SketchSum = .modular) throws {
        try requireSameShape(sketch)
        switch sum {
        case .modular:
            var fields = sketch.cells
            try allreduce(&fields, .modPrimeSum)
            fields.withUnsafeBufferPointer { sketch.replaceCells(with: $0) }
        case .widened:
            var wide = sketch.cells.map(UInt64.init)
            try allreduce(&wide, .sum)
            let fields = wide.map { ModPrime.reduce($0) }
            fields.withUnsafeBufferPointer { sketch.replaceCells(with: $0) }
        }
    }

    /// The sum of every rank's sketch on `root` (`sketch` replaced there, left alone elsewhere).
    public func reduce(_ sketch: inout FermatSketch, root: Int) throws {
        try requireSameShape(sketch)
        var fields = sketch.cells
        try fields.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in try reduce(buffer, .modPrimeSum, root: root) }
        if rank == root { fields.withUnsafeBufferPointer { sketch.replaceCells(with: $0) } }
    }

    /// Throws the same error on every rank unless all ranks hold rank 0's shape and seed.
    private func requireSameShape(_ sketch: FermatSketch) throws {
        let shapes = try allgather([UInt64(sketch.depth), UInt64(sketch.width), sketch.seed])
        func shape(_ r: Int) -> String { "\(shapes[3 * r])×\(shapes[3 * r + 1]), seed \(shapes[3 * r + 2])" }
        if let r = (1..<size).first(where: { shapes[3 * $0..<3 * $0 + 3] != shapes[0..<3] }) {
            throw SketchError("rank \(r) holds a sketch of \(shape(r)); rank 0 one of \(shape(0))")
        }
    }
}
