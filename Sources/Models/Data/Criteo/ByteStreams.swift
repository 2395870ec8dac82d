import Foundation
import ZlibShim

/// Bytes read front to back, once: a file, standard input, or a gzip stream inflated from one.
protocol ByteStream: AnyObject {
    /// Fills the start of `buffer`; 0 at the end of the data.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(DatasetError) -> Int
}

/// Opens `path` ("-": standard input) and reads it as it is stored: plain text as is, gzip
/// (one or more concatenated members) inflated by the system zlib. Any other compression,
/// recognised by its magic number, is a clear error rather than 40 fields of noise.
func openByteStream(_ path: String) throws(DatasetError) -> ByteStream {
    let file = try FileBytes(path: path)
    let magic = try file.peek(6)
    if magic.starts(with: [0x1f, 0x8b]) { return try GzipBytes(file) }
    for (bytes, name, tool) in foreignCompressions where magic.starts(with: bytes) {
        let decompress = tool.map { "decompress it first, e.g. `\($0) \(path) | mpitrain ... --data-path -`" } ?? "unpack it first"
        throw DatasetError(path: file.path, line: 0, reason: "\(name) data; only plain text and gzip are read (\(decompress))")
    }
    return file
}

/// Magic numbers of the compressions not read here, with the tool that decompresses each to stdout.
private let foreignCompressions: [([UInt8], String, String?)] = [
    ([0x28, 0xb5, 0x2f, 0xfd], "zstd-compressed", "zstd -dc"),
    ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], "xz-compressed", "xz -dc"),
    ([0x42, 0x5a, 0x68], "bzip2-compressed", "bzip2 -dc"),
    ([0x04, 0x22, 0x4d, 0x18], "lz4-compressed", "lz4 -dc"),
    ([0x50, 0x4b, 0x03, 0x04], "a zip archive", nil),
]

/// A file or standard input read with read(2). `offset` counts the bytes read so far.
final class FileBytes: ByteStream {
    /// The path, or "standard input".
    let path: String
    private let descriptor: Int32
    private(set) var offset = 0
    /// Bytes read ahead by `peek`, handed out first.
    private var pending: [UInt8] = []

    init(path: String) throws(DatasetError) {
        self.path = path == "-" ? "standard input" : path
        if path == "-" {
            descriptor = STDIN_FILENO
            return
        }
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
            throw DatasetError(path: path, line: 0, reason: "a directory, not a data file")
        }
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DatasetError(path: path, line: 0, reason: "cannot open: \(String(cString: strerror(errno)))") }
    }

    deinit { if descriptor != STDIN_FILENO { close(descriptor) } }

    /// Up to `count` bytes from the start, without consuming them (fewer at the end of the data).
    func peek(_ count: Int) throws(DatasetError) -> [UInt8] {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        defer { bytes.deallocate() }
        var filled = 0
        while filled < count {
            let n = try readDescriptor(into: UnsafeMutableRawBufferPointer(rebasing: bytes[filled...]))
            if n == 0 { break }
            filled += n
        }
        pending = Array(bytes[..<filled])
        return pending
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(DatasetError) -> Int {
        guard pending.isEmpty else {
            let n = min(pending.count, buffer.count)
            pending.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            pending.removeFirst(n)
            return n
        }
        return try readDescriptor(into: buffer)
    }

    private func readDescriptor(into buffer: UnsafeMutableRawBufferPointer) throws(DatasetError) -> Int {
        while true {
            let n = Foundation.read(descriptor, buffer.baseAddress, buffer.count)
            if n >= 0 {
                offset += n
                return n
            }
            if errno != EINTR { throw DatasetError(path: path, line: 0, reason: "read failed at byte \(offset): \(String(cString: strerror(errno)))") }
        }
    }
}

/// A gzip file inflated by zlib, member after member (as `cat a.gz b.gz`, pigz and bgzip
/// write). A stream that ends inside a member, or bytes that are not gzip, are errors that
/// name the compressed byte offset.
final class GzipBytes: ByteStream {
    private let file: FileBytes
    private var stream = z_stream()
    private var input: UnsafeMutableRawBufferPointer
    /// True between a member's end and the next member's first byte.
    private var betweenMembers = false
    private var finished = false

    init(_ file: FileBytes) throws(DatasetError) {
        self.file = file
        input = .allocate(byteCount: 1 << 18, alignment: 64)
        // 15 + 16: a 32 KiB window, gzip header and trailer expected.
        guard zlib_shim_inflate_init(&stream, 15 + 16) == Z_OK else {
            input.deallocate()
            throw DatasetError(path: file.path, line: 0, reason: "zlib could not start inflating")
        }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    /// Compressed bytes consumed so far.
    private var compressedOffset: Int { file.offset - Int(stream.avail_in) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(DatasetError) -> Int {
        guard !finished, buffer.count > 0 else { return 0 }
        stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = UInt32(min(buffer.count, Int(UInt32.max)))
        while stream.avail_out > 0 {
            if stream.avail_in == 0 {
                let n = try file.read(into: input)
                if n == 0 {
                    if betweenMembers {
                        finished = true
                        break
                    }
                    throw DatasetError(path: file.path, line: 0,
                                       reason: "truncated gzip stream: the data ends at byte \(file.offset) inside a compressed member")
                }
                stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = UInt32(n)
            }
            if betweenMembers {
                // Another member must start here, with its magic number, or the file is damaged.
                guard stream.next_in[0] == 0x1f else {
                    throw DatasetError(path: file.path, line: 0, reason: "not gzip data at byte \(compressedOffset), after a complete member")
                }
                inflateReset(&stream)
                betweenMembers = false
            }
            let status = inflate(&stream, Z_NO_FLUSH)
            switch status {
            case Z_OK, Z_BUF_ERROR:
                continue
            case Z_STREAM_END:
                betweenMembers = true
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw DatasetError(path: file.path, line: 0, reason: "corrupt gzip data near byte \(compressedOffset) (\(message))")
            }
        }
        return buffer.count - Int(stream.avail_out)
    }
}
