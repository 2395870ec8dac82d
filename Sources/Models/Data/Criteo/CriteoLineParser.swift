import Foundation

/// Where one parsed sample goes: its label, its 13 dense features (contiguous) and its 26
/// rows, `rowStride` apart (a batch keeps each table's rows together).
struct SampleSlot {
    var label: UnsafeMutablePointer<Float>
    var dense: UnsafeMutablePointer<Float>
    var rows: UnsafeMutablePointer<Int32>
    var rowStride: Int
}

/// Parses lines of the Criteo Kaggle / Terabyte TSV layout: label, 13 integer counts, 26
/// categoricals of up to 16 hex digits, tab-separated; any field but the label may be empty.
/// A dense feature becomes log(1 + max(x, 0)); a categorical's value modulo its table's rows
/// is its row (empty: row 0). One pass over the bytes; a line that fails it is read again,
/// slowly, only to say what is wrong with it.
struct CriteoLineParser {
    static let denseFeatures = 13
    static let categoricalFeatures = 26

    private let tables: Tables

    /// The parser's lookup tables, in memory of their own so that the byte loop reads them
    /// without bounds checks or lazy initialisation.
    private final class Tables: @unchecked Sendable {
        let rows: UnsafeMutablePointer<UInt64>
        /// Value of every byte as a hex digit, 255 when it is not one.
        let hexDigits: UnsafeMutablePointer<UInt8>
        /// log(1 + x) for the small counts that make up most of the data.
        let smallLogs: UnsafeMutablePointer<Float>
        static let smallCounts = 4096

        init(tableRows: [Int]) {
            rows = .allocate(capacity: tableRows.count)
            for (t, n) in tableRows.enumerated() { rows[t] = UInt64(n) }
            hexDigits = .allocate(capacity: 256)
            for byte in 0..<256 {
                hexDigits[byte] = switch byte {
                case 0x30...0x39: UInt8(byte - 0x30)
                case 0x61...0x66: UInt8(byte - 0x61 + 10)
                case 0x41...0x46: UInt8(byte - 0x41 + 10)
                default: 255
                }
            }
            smallLogs = .allocate(capacity: Self.smallCounts)
            for x in 0..<Self.smallCounts { smallLogs[x] = Float(log1p(Double(x))) }
        }

        deinit {
            rows.deallocate()
            hexDigits.deallocate()
            smallLogs.deallocate()
        }
    }

    init(tableRows: [Int]) {
        precondition(tableRows.count == Self.categoricalFeatures && tableRows.allSatisfy { $0 > 0 })
        tables = Tables(tableRows: tableRows)
    }

    /// log(1 + max(x, 0)) as a Float, the same for every x however it is computed.
    @inline(__always)
    func denseValue(_ magnitude: UInt64, negative: Bool) -> Float {
        if negative { return 0 }
        return magnitude < UInt64(Tables.smallCounts) ? tables.smallLogs[Int(magnitude)] : Float(log1p(Double(magnitude)))
    }

    /// Parses `line` into `slot`, or only checks it when `slot` is nil. Nil when the line is
    /// good, else why it is not.
    func parse(_ line: UnsafeBufferPointer<UInt8>, into slot: SampleSlot?) -> String? {
        if fastParse(line, into: slot) { return nil }
        return diagnose(line)
    }

    /// The one-pass parser: true when the line is good (and `slot`, if any, filled).
    private func fastParse(_ line: UnsafeBufferPointer<UInt8>, into slot: SampleSlot?) -> Bool {
        guard line.count >= 2, let base = line.baseAddress else { return false }
        let end = base + line.count
        let labelByte = base[0]
        guard labelByte == 0x30 || labelByte == 0x31, base[1] == 0x09 else { return false }
        var p = base + 2
        let hexDigits = tables.hexDigits, rows = tables.rows
        slot?.label.pointee = labelByte == 0x31 ? 1 : 0
        for j in 0..<Self.denseFeatures {
            let negative = p < end && p.pointee == 0x2d
            if negative { p += 1 }
            var value: UInt64 = 0, digits = 0
            while p < end {
                let digit = p.pointee &- 0x30
                if digit > 9 { break }
                value = value &* 10 &+ UInt64(digit)
                digits += 1
                p += 1
            }
            // 19 digits cannot wrap a UInt64; the value must also fit an Int64.
            guard p < end, p.pointee == 0x09, digits <= 19, value <= UInt64(Int64.max), !(negative && digits == 0) else { return false }
            p += 1
            if let slot { slot.dense[j] = denseValue(value, negative: negative) }
        }
        for t in 0..<Self.categoricalFeatures {
            var value: UInt64 = 0, digits = 0
            while p < end, p.pointee != 0x09 {
                let digit = hexDigits[Int(p.pointee)]
                guard digit < 16 else { return false }
                value = value << 4 | UInt64(digit)
                digits += 1
                p += 1
            }
            guard digits <= 16 else { return false }
            if t < Self.categoricalFeatures - 1 {
                guard p < end else { return false }
                p += 1
            } else {
                guard p == end else { return false }
            }
            if let slot { slot.rows[t * slot.rowStride] = Int32(truncatingIfNeeded: value % rows[t]) }
        }
        return true
    }

    /// What is wrong with a line the one-pass parser refused, field by field.
    func diagnose(_ line: UnsafeBufferPointer<UInt8>) -> String {
        let fields = line.split(separator: 0x09, omittingEmptySubsequences: false)
        guard fields.count == 40 else { return "expected 40 tab-separated fields (label, 13 integers, 26 categoricals), found \(fields.count)" }
        func text(_ field: Slice<UnsafeBufferPointer<UInt8>>) -> String { String(decoding: field.prefix(40), as: UTF8.self) }
        guard fields[0].count == 1, fields[0].first == 0x30 || fields[0].first == 0x31 else { return "label '\(text(fields[0]))' is not 0 or 1" }
        for j in 0..<Self.denseFeatures {
            let field = fields[1 + j]
            let digits = field.first == 0x2d ? field.dropFirst() : field[...]
            let valid = field.isEmpty || (!digits.isEmpty && digits.allSatisfy { $0 &- 0x30 <= 9 } && Int64(String(decoding: digits, as: UTF8.self)) != nil)
            if !valid { return "I\(j + 1) '\(text(field))' is not an integer" }
        }
        for t in 0..<Self.categoricalFeatures {
            let field = fields[14 + t]
            if field.count > 16 || !field.allSatisfy({ tables.hexDigits[Int($0)] < 16 }) { return "C\(t + 1) '\(text(field))' is not a hexadecimal hash" }
        }
        return "not a line of this layout"
    }
}
