import Foundation

/// An array in NumPy's `.npy` format, versions 1 to 3, as `np.save` writes it: the magic
/// `\x93NUMPY`, a version, a header that is a Python dict literal (`descr`, `fortran_order`,
/// `shape`), then the elements. Little-endian numbers in C order are read; anything else is one
/// clear error rather than a wrong array.
struct NumPyArray {
    /// The element types the graph readers take.
    enum Element: String {
        case bool = "b1", int32 = "i4", int64 = "i8", float32 = "f4", float64 = "f8"

        var name: String {
            switch self {
            case .bool: "bool"
            case .int32: "int32"
            case .int64: "int64"
            case .float32: "float32"
            case .float64: "float64"
            }
        }

        var size: Int { Int(rawValue.dropFirst()) ?? 1 }
    }

    let path: String
    /// The dtype as the header spells it ('<f4'), for messages.
    let descr: String
    /// Nil for a dtype the readers do not take.
    let element: Element?
    let shape: [Int]
    /// Elements in all.
    let count: Int
    private let file: FileBytes

    /// Reads the header of the file at `path` and checks that the file holds the elements it announces.
    init(path: String) throws(DatasetError) {
        self.path = path
        file = try FileBytes(path: path)
        let preamble = try file.peek(12)
        guard preamble.count >= 10, preamble.starts(with: [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]) else {
            throw DatasetError(path: path, line: 0, reason: "not a .npy file (no \\x93NUMPY magic at its start)")
        }
        let headerStart: Int, headerLength: Int
        switch preamble[6] {
        case 1:
            headerStart = 10
            headerLength = Int(preamble[8]) | Int(preamble[9]) << 8
        case 2, 3:
            guard preamble.count == 12 else { throw DatasetError(path: path, line: 0, reason: "a .npy file cut short in its header") }
            headerStart = 12
            headerLength = (8..<12).reduce(0) { $0 | Int(preamble[$1]) << (8 * ($1 - 8)) }
        default:
            throw DatasetError(path: path, line: 0, reason: ".npy format version \(preamble[6]).\(preamble[7]); versions 1 to 3 are read")
        }
        guard headerLength <= 1 << 20 else { throw DatasetError(path: path, line: 0, reason: "a .npy header of \(headerLength) bytes: not a .npy file") }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: headerStart + headerLength, alignment: 1)
        defer { bytes.deallocate() }
        try Self.fill(bytes, from: file, path: path)
        let header = try NumPyHeader(Array(bytes[headerStart...]), path: path)
        descr = header.descr
        shape = header.shape
        element = header.element
        var count = 1
        for n in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw DatasetError(path: path, line: 0, reason: "shape \(header.shapeText) is too large") }
            count = product
        }
        self.count = count
        guard let element else { return }
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG {
            let data = Int(status.st_size) - headerStart - headerLength
            let (needed, overflow) = count.multipliedReportingOverflow(by: element.size)
            guard !overflow, data == needed else {
                throw DatasetError(path: path, line: 0, reason: "holds \(data) bytes of data; shape \(header.shapeText) of \(element.name) needs \(overflow ? "more" : "\(needed)")")
            }
        }
    }

    /// The shape as Python prints it, for messages.
    var shapeText: String { NumPyHeader.text(shape) }

    /// The elements as floats (float32 or float64 stored).
    func floats() throws(DatasetError) -> [Float] {
        switch element {
        case .float32: try elements(Float.self) { $0 }
        case .float64: try elements(Double.self) { Float($0) }
        default: throw wrongType("float32 or float64")
        }
    }

    /// The elements as integers (int32 or int64 stored).
    func integers() throws(DatasetError) -> [Int64] {
        switch element {
        case .int32: try elements(Int32.self) { Int64($0) }
        case .int64: try elements(Int64.self) { $0 }
        default: throw wrongType("int32 or int64")
        }
    }

    /// The elements as booleans (bool stored).
    func bools() throws(DatasetError) -> [Bool] {
        guard element == .bool else { throw wrongType("bool") }
        return try elements(UInt8.self) { $0 != 0 }
    }

    func wrongType(_ expected: String) -> DatasetError {
        DatasetError(path: path, line: 0, reason: "dtype '\(descr)'\(element.map { " (\($0.name))" } ?? ""); expected \(expected)")
    }

    /// The data read a chunk at a time as `Stored` and converted, with no allocation per element.
    private func elements<Stored, Value>(_ stored: Stored.Type, _ convert: (Stored) -> Value) throws(DatasetError) -> [Value] {
        let chunk = UnsafeMutableBufferPointer<Stored>.allocate(capacity: max(1, min(count, 1 << 16)))
        defer { chunk.deallocate() }
        var failure: DatasetError?
        let values = [Value](unsafeUninitializedCapacity: count) { out, initialized in
            initialized = 0
            while initialized < count {
                let n = min(chunk.count, count - initialized)
                do throws(DatasetError) {
                    try Self.fill(UnsafeMutableRawBufferPointer(start: chunk.baseAddress, count: n * MemoryLayout<Stored>.stride), from: file, path: path)
                } catch {
                    failure = error
                    return
                }
                let target = out.baseAddress! + initialized
                for i in 0..<n { (target + i).initialize(to: convert(chunk[i])) }
                initialized += n
            }
        }
        if let failure { throw failure }
        return values
    }

    /// Fills `buffer` from `file`, or says where the file ended.
    private static func fill(_ buffer: UnsafeMutableRawBufferPointer, from file: FileBytes, path: String) throws(DatasetError) {
        var filled = 0
        while filled < buffer.count {
            let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            guard n > 0 else { throw DatasetError(path: path, line: 0, reason: "ends at byte \(file.offset), inside its \(filled == 0 && file.offset < 12 ? "header" : "data")") }
            filled += n
        }
    }
}

/// The dict literal of a .npy header: `{'descr': '<f4', 'fortran_order': False, 'shape': (2708, 1433), }`.
private struct NumPyHeader {
    let descr: String
    let element: NumPyArray.Element?
    let shape: [Int]
    var shapeText: String { Self.text(shape) }

    private enum Value { case string(String), bool(Bool), tuple([Int]), list }

    init(_ bytes: [UInt8], path: String) throws(DatasetError) {
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        func malformed() -> DatasetError {
            DatasetError(path: path, line: 0, reason: "a malformed .npy header: \(text.prefix(120))")
        }
        var scanner = Scanner(bytes: bytes)
        guard let dict = scanner.dict() else { throw malformed() }
        guard case .bool(let fortran)? = dict["fortran_order"], case .tuple(let shape)? = dict["shape"] else { throw malformed() }
        let descr: String
        switch dict["descr"] {
        case .string(let value)?: descr = value
        case .list?: throw DatasetError(path: path, line: 0, reason: "a structured dtype (\(text.prefix(120))); only plain numeric arrays are read")
        default: throw malformed()
        }
        guard !fortran else {
            throw DatasetError(path: path, line: 0, reason: "stored in Fortran order; save it in C order (np.save(path, np.ascontiguousarray(a)))")
        }
        let order = descr.first
        let element = NumPyArray.Element(rawValue: String(descr.dropFirst()))
        if order == ">", let element, element.size > 1 {
            throw DatasetError(path: path, line: 0, reason: "big-endian '\(descr)'; only little-endian arrays are read (np.save(path, a.astype('<\(element.rawValue)')))")
        }
        self.descr = descr
        self.element = order == "<" || order == "|" || order == "=" ? element : nil
        self.shape = shape
    }

    static func text(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    /// Reads the subset of Python literals a header holds: a dict of strings, booleans, tuples
    /// of integers, and lists (structured dtypes, only recognised).
    private struct Scanner {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func dict() -> [String: Value]? {
            guard skip("{") else { return nil }
            var result: [String: Value] = [:]
            while !skip("}") {
                guard let key = string(), skip(":"), let value = value() else { return nil }
                result[key] = value
                guard skip(",") || peek("}") else { return nil }
            }
            return result
        }

        private mutating func value() -> Value? {
            space()
            guard i < bytes.count else { return nil }
            switch bytes[i] {
            case 0x27, 0x22: return string().map(Value.string)
            case 0x28: return tuple().map(Value.tuple)
            case 0x5b: return list() ? .list : nil
            default:
                if skip("True") { return .bool(true) }
                if skip("False") { return .bool(false) }
                return nil
            }
        }

        private mutating func string() -> String? {
            space()
            guard i < bytes.count, bytes[i] == 0x27 || bytes[i] == 0x22 else { return nil }
            let quote = bytes[i]
            guard let end = bytes[(i + 1)...].firstIndex(of: quote) else { return nil }
            defer { i = end + 1 }
            return String(decoding: bytes[(i + 1)..<end], as: UTF8.self)
        }

        private mutating func tuple() -> [Int]? {
            guard skip("(") else { return nil }
            var values: [Int] = []
            while !skip(")") {
                space()
                let start = i
                while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }
                guard i > start, let n = Int(String(decoding: bytes[start..<i], as: UTF8.self)) else { return nil }
                _ = skip("L")  // Python 2 longs: (3L,)
                values.append(n)
                guard skip(",") || peek(")") else { return nil }
            }
            return values
        }

        /// Passes over a bracketed list, nested or not.
        private mutating func list() -> Bool {
            var depth = 0
            while i < bytes.count {
                if bytes[i] == 0x5b { depth += 1 }
                if bytes[i] == 0x5d { depth -= 1 }
                i += 1
                if depth == 0 { return true }
            }
            return false
        }

        private mutating func space() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x09 { i += 1 }
        }

        private mutating func peek(_ token: String) -> Bool {
            space()
            return bytes[i...].starts(with: token.utf8)
        }

        private mutating func skip(_ token: String) -> Bool {
            guard peek(token) else { return false }
            i += token.utf8.count
            return true
        }
    }
}
