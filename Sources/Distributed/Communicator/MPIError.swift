import MPIShim

/// An MPI call that did not return `MPI_SUCCESS`, or that the Swift layer refused before calling.
public struct MPIError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The C function, e.g. `"MPI_Alltoallv"`.
    public let call: String
    /// What the call returned (equal to `errorClass` for errors raised in Swift).
    public let code: Int32
    /// `MPI_Error_class(code)`.
    public let errorClass: Int32
    /// `MPI_Error_string(code)`, or the reason the Swift layer refused the call.
    public let message: String

    public init(call: String, code: Int32, errorClass: Int32, message: String) {
        self.call = call
        self.code = code
        self.errorClass = errorClass
        self.message = message
    }

    /// An error raised in Swift before calling MPI, in the class MPI itself would use.
    public init(call: String, errorClass: Int32, reason: String) {
        self.init(call: call, code: errorClass, errorClass: errorClass, message: reason)
    }

    public var description: String {
        "\(call) failed: \(message) (class \(errorClass), code \(code))"
    }
}

/// Throws an `MPIError` naming `call` unless `code` is `MPI_SUCCESS`: every raw call goes through here.
@inline(__always)
func check(_ code: Int32, _ call: StaticString) throws(MPIError) {
    if code != MPI_SUCCESS { throw MPIError(returnedBy: call, code: code) }
}

extension MPIError {
    /// Reads the class and text of a code MPI returned.
    init(returnedBy call: StaticString, code: Int32) {
        var errorClass: Int32 = 0
        if MPI_Error_class(code, &errorClass) != MPI_SUCCESS { errorClass = MPI_ERR_UNKNOWN }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        let message: String
        if MPI_Error_string(code, &text, &length) == MPI_SUCCESS {
            message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        } else {
            message = "unknown MPI error"
        }
        self.init(call: "\(call)", code: code, errorClass: errorClass, message: message)
    }
}

/// Converts a Swift count to the `int` OpenMPI takes, refusing rather than truncating.
@inline(__always)
func mpiCount(_ count: Int, _ call: StaticString) throws(MPIError) -> Int32 {
    guard let value = Int32(exactly: count), value >= 0 else {
        throw MPIError(call: "\(call)", errorClass: MPI_ERR_COUNT,
                       reason: "MPI_ERR_COUNT: count \(count) does not fit MPI's int")
    }
    return value
}
