import MPIShim

/// A predefined MPI datatype handle (`MPI_FLOAT`, `MPI_INT64_T`, ...).
public struct MPIDatatype: @unchecked Sendable, Hashable {
    // Handles are process-wide constants owned by the MPI library.
    let raw: MPI_Datatype

    public static var float: MPIDatatype { .init(raw: MPIShim_FLOAT()) }
    public static var double: MPIDatatype { .init(raw: MPIShim_DOUBLE()) }
    public static var int32: MPIDatatype { .init(raw: MPIShim_INT32_T()) }
    public static var int64: MPIDatatype { .init(raw: MPIShim_INT64_T()) }
    public static var uint32: MPIDatatype { .init(raw: MPIShim_UINT32_T()) }
    public static var uint64: MPIDatatype { .init(raw: MPIShim_UINT64_T()) }
    public static var uint8: MPIDatatype { .init(raw: MPIShim_UINT8_T()) }

    /// Size in bytes as MPI reports it (`MPI_Type_size`).
    public func size() throws(MPIError) -> Int {
        var size: Int32 = 0
        try check(MPI_Type_size(raw, &size), "MPI_Type_size")
        return Int(size)
    }
}

/// A value MPI sends as a predefined datatype, without packing.
public protocol MPIScalar: BitwiseCopyable, Sendable {
    static var mpiDatatype: MPIDatatype { get }
}

extension Float: MPIScalar { public static var mpiDatatype: MPIDatatype { .float } }
extension Double: MPIScalar { public static var mpiDatatype: MPIDatatype { .double } }
extension Int32: MPIScalar { public static var mpiDatatype: MPIDatatype { .int32 } }
extension Int64: MPIScalar { public static var mpiDatatype: MPIDatatype { .int64 } }
extension UInt32: MPIScalar { public static var mpiDatatype: MPIDatatype { .uint32 } }
extension UInt64: MPIScalar { public static var mpiDatatype: MPIDatatype { .uint64 } }
extension UInt8: MPIScalar { public static var mpiDatatype: MPIDatatype { .uint8 } }

/// A predefined reduction (`MPI_SUM`, `MPI_MAX`, `MPI_MIN`, `MPI_PROD`).
public struct ReduceOp: @unchecked Sendable, Hashable, CustomStringConvertible {
    // Handles are process-wide constants owned by the MPI library.
    let raw: MPI_Op
    public let description: String

    public static var sum: ReduceOp { .init(raw: MPIShim_SUM(), description: "sum") }
    public static var max: ReduceOp { .init(raw: MPIShim_MAX(), description: "max") }
    public static var min: ReduceOp { .init(raw: MPIShim_MIN(), description: "min") }
    public static var product: ReduceOp { .init(raw: MPIShim_PROD(), description: "product") }
}
