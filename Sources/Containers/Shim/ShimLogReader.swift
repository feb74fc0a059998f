#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Where a ``ShimLogReader`` stands: a log file (by inode, which survives the rename to
/// `log.1`) and the byte offset just past the last line read from it.
///
/// The agent persists it, so a restarted agent continues exactly where it left off.
/// Inode 0 (never a real inode) means "from the oldest line still on disk".
public struct ShimLogPosition: Codable, Sendable, Equatable {
    /// Inode of the file being read.
    public var inode: UInt64
    /// Offset just past the last complete line read.
    public var offset: Int64

    /// A position.
    public init(inode: UInt64, offset: Int64) {
        self.inode = inode
        self.offset = offset
    }

    /// The start of whatever is on disk.
    public static let beginning = ShimLogPosition(inode: 0, offset: 0)
}

/// One line of a container's log.
public struct ShimLogRecord: Sendable, Equatable {
    /// Which stream the line came from.
    public enum Stream: Sendable, Equatable {
        /// The app's standard output (`O`).
        case out
        /// The app's standard error (`E`).
        case err
        /// The shim itself (`S`): dropped-line counts, start failures, lost lines.
        case system
    }

    /// When the shim read the line, Unix nanoseconds.
    public var timestampNanos: Int64
    /// Its stream.
    public var stream: Stream
    /// The text, without the newline (invalid UTF-8 replaced).
    public var text: String

    /// A record value.
    public init(timestampNanos: Int64, stream: Stream, text: String) {
        self.timestampNanos = timestampNanos
        self.stream = stream
        self.text = text
    }
}

/// Follows a shim's `log` (and `log.1` across a rotation) from a saved position.
///
/// Only complete lines are returned; a line the shim is still writing waits for the next
/// call. When `log` has been rotated since the last call, the reader finishes `log.1` from
/// the saved offset (same inode) before it starts the new `log` at 0, so nothing is lost or
/// repeated. If the reader fell so far behind that its file was rotated away twice, the gap
/// is reported as one `.system` record and reading resumes at the oldest line left.
///
/// Reads are plain blocking file reads of at most a few hundred KiB; call it from a thread
/// that may block (it never waits for new data).
public struct ShimLogReader: Sendable {
    /// The shim's state directory.
    public let stateDir: String
    /// Just past the last record returned; persist it to resume later.
    public private(set) var position: ShimLogPosition

    /// A reader of `stateDir`'s log from `position` (nil: from the oldest line on disk).
    public init(stateDir: String, position: ShimLogPosition? = nil) {
        self.stateDir = stateDir
        self.position = position ?? .beginning
    }

    /// The text of the record that stands for lines rotated away unread.
    public static let gapText = "cf-like: log lines were lost (rotated away before they were read)"

    /// Up to `maxRecords` complete records after ``position``, oldest first; advances ``position``.
    public mutating func read(maxRecords: Int = 1000) throws -> [ShimLogRecord] {
        var records: [ShimLogRecord] = []
        guard maxRecords > 0 else { return records }
        // Each pass either returns or moves to a newer file; a handful covers any race with rotations.
        for _ in 0..<8 {
            let current = try LogFileHandle.open(ShimStateDirectory.path(stateDir, ShimStateDirectory.log))
            let rotated = try LogFileHandle.open(ShimStateDirectory.path(stateDir, ShimStateDirectory.rotatedLog))
            guard current != nil || rotated != nil else { return records }

            if position.inode == 0 {
                // Fresh: start with the older file.
                if let first = rotated ?? current { position = ShimLogPosition(inode: first.inode, offset: 0) }
                continue
            }
            if let current, current.inode == position.inode {
                if !current.isLineBoundary(position.offset) {
                    // Not the file we read before (its inode number was reused): start it over.
                    records.append(gapRecord())
                    position.offset = 0
                }
                _ = try consume(current, into: &records, max: maxRecords)
                return records
            }
            if let rotated, rotated.inode == position.inode, rotated.isLineBoundary(position.offset) {
                let finished = try consume(rotated, into: &records, max: maxRecords)
                // `log` was opened before `log.1` was found to be our file, so it is the file
                // written right after ours; while it is missing (mid-rotation) wait for it.
                guard finished, let current else { return records }
                position = ShimLogPosition(inode: current.inode, offset: 0)
                continue
            }
            // Our file is gone: everything on disk is newer than it.
            records.append(gapRecord())
            if let next = rotated ?? current { position = ShimLogPosition(inode: next.inode, offset: 0) }
            if records.count >= maxRecords { return records }
        }
        return records
    }

    private func gapRecord() -> ShimLogRecord {
        ShimLogRecord(timestampNanos: Int64(Date().timeIntervalSince1970 * 1e9), stream: .system, text: Self.gapText)
    }

    /// Reads complete lines of `file` from ``position``'s offset. True when no complete line is left.
    private mutating func consume(_ file: LogFileHandle, into records: inout [ShimLogRecord], max: Int) throws -> Bool {
        let chunkSize = 256 << 10
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while records.count < max {
            let count = try file.read(into: &buffer, at: position.offset)
            guard count > 0 else { return true }
            var consumed = 0
            var complete = false
            buffer.withUnsafeBytes { bytes in
                var start = 0
                while records.count < max, start < count, let base = bytes.baseAddress,
                      let found = memchr(base + start, Int32(UInt8(ascii: "\n")), count - start) {
                    let newline = UnsafeRawPointer(found) - base
                    if let record = Self.parse(UnsafeRawBufferPointer(rebasing: bytes[start..<newline])) {
                        records.append(record)
                    }
                    start = newline + 1
                }
                consumed = start
                complete = consumed == count
            }
            if consumed == 0 {
                // No newline in a whole chunk: longer than any record the shim writes (a
                // damaged file). Skip it rather than stall forever; a partial tail of fewer
                // bytes is a line still being written.
                guard count == chunkSize else { return true }
                consumed = count
            }
            position.offset += Int64(consumed)
            if complete, count < chunkSize { return true }
        }
        return false
    }

    /// `<unix-ns> <O|E|S> <text>`; nil for anything else.
    static func parse(_ line: UnsafeRawBufferPointer) -> ShimLogRecord? {
        guard let space = line.firstIndex(of: UInt8(ascii: " ")), space > 0, line.count >= space + 3,
              line[space + 2] == UInt8(ascii: " ")
        else { return nil }
        var timestamp: Int64 = 0
        for byte in line[..<space] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflow1) = timestamp.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            timestamp = sum
        }
        let stream: ShimLogRecord.Stream
        switch line[space + 1] {
        case UInt8(ascii: "O"): stream = .out
        case UInt8(ascii: "E"): stream = .err
        case UInt8(ascii: "S"): stream = .system
        default: return nil
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: line[(space + 3)...]), as: UTF8.self)
        return ShimLogRecord(timestampNanos: timestamp, stream: stream, text: text)
    }
}

/// An open log file and its inode; closed when the last copy goes away.
private final class LogFileHandle {
    let fd: Int32
    let inode: UInt64
    let path: String

    private init(fd: Int32, inode: UInt64, path: String) {
        self.fd = fd
        self.inode = inode
        self.path = path
    }

    deinit { close(fd) }

    /// The open file, or nil when it does not exist. The inode comes from the open descriptor,
    /// so a rename between looking and opening cannot mix two files up.
    static func open(_ path: String) throws -> LogFileHandle? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw ContainerError.systemCall("open", path, errno: errno)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw ContainerError.systemCall("fstat", path, errno: code)
        }
        return LogFileHandle(fd: fd, inode: UInt64(info.st_ino), path: path)
    }

    /// Reads up to `buffer.count` bytes at `offset`; 0 at the end.
    func read(into buffer: inout [UInt8], at offset: Int64) throws -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw ContainerError.systemCall("pread", path, errno: errno)
        }
    }

    /// Whether `offset` is the start of a line: 0, or just after a newline, within the file.
    func isLineBoundary(_ offset: Int64) -> Bool {
        guard offset > 0 else { return offset == 0 }
        var byte: UInt8 = 0
        return pread(fd, &byte, 1, off_t(offset - 1)) == 1 && byte == UInt8(ascii: "\n")
    }
}
