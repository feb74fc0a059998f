import Glibc
import NIOCore

/// Where access-log lines go: a file opened for appending (whole lines per write(2), so loops
/// never interleave inside a line), standard output, or nowhere.
public final class AccessLogSink: Sendable {
    let fd: Int32
    private let ownsDescriptor: Bool

    /// No access log.
    public static let disabled = AccessLogSink(fd: -1, owns: false)

    private init(fd: Int32, owns: Bool) {
        self.fd = fd
        self.ownsDescriptor = owns
    }

    /// `"-"` for standard output, `""` for none, otherwise a file created (0640) if missing.
    public static func open(_ path: String) throws -> AccessLogSink {
        if path.isEmpty { return .disabled }
        if path == "-" { return AccessLogSink(fd: STDOUT_FILENO, owns: false) }
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw RouterError("cannot open the access log \(path): \(String(cString: strerror(errno)))")
        }
        return AccessLogSink(fd: fd, owns: true)
    }

    var isEnabled: Bool { fd >= 0 }

    /// Appends whole lines; a short write is retried, an error drops the batch (logging must
    /// never stop routing).
    func write(_ buffer: ByteBuffer) {
        guard fd >= 0 else { return }
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }

    deinit {
        if ownsDescriptor { Glibc.close(fd) }
    }
}

/// The facts of one finished request that go into its access-log line.
struct AccessLogEntry {
    var startWall: WallTime
    var status: Int
    var bytesReceived: Int64
    var bytesSent: Int64
    var durationNanoseconds: Int64
    var requestID: RequestID?
    var backend: Backend?
    var routerError: RouterAnswer.Code?
}

/// One event loop's access-log buffer: lines are formatted straight into it (no strings) and
/// written out when 64 KiB have gathered or at the next tick of the loop's timer.
struct AccessLogBuffer {
    private(set) var buffer: ByteBuffer
    static let flushThreshold = 64 * 1024

    init() {
        buffer = ByteBufferAllocator().buffer(capacity: Self.flushThreshold + 4096)
    }

    var isEmpty: Bool { buffer.readableBytes == 0 }

    /// Formats one line:
    /// `host - [time] "request line" status bytes_received bytes_sent "user agent" "client" "backend"
    /// vcap_request_id:"id" response_time:seconds app_id:"guid" app_index:"n" x_cf_routererror:"code"`.
    /// `fields` holds the host, the request line and the user agent back to back, sized by `lengths`.
    mutating func append(_ entry: AccessLogEntry, fields: ByteBuffer, lengths: (host: Int, requestLine: Int, userAgent: Int),
                         client: [UInt8], clock: inout WallClockCache) {
        fields.withUnsafeReadableBytes { f in
            let host = lengths.host
            if host > 0 { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: f[0..<host])) } else { buffer.writeStaticString("-") }
            buffer.writeStaticString(" - [")
            clock.write(entry.startWall, into: &buffer)
            buffer.writeStaticString("] \"")
            Self.escaped(UnsafeRawBufferPointer(rebasing: f[host..<(host + lengths.requestLine)]), into: &buffer)
            buffer.writeStaticString("\" ")
            Self.decimal(Int64(entry.status), into: &buffer)
            buffer.writeStaticString(" ")
            Self.decimal(entry.bytesReceived, into: &buffer)
            buffer.writeStaticString(" ")
            Self.decimal(entry.bytesSent, into: &buffer)
            buffer.writeStaticString(" \"")
            let ua = host + lengths.requestLine
            if lengths.userAgent > 0 {
                Self.escaped(UnsafeRawBufferPointer(rebasing: f[ua..<(ua + lengths.userAgent)]), into: &buffer)
            } else {
                buffer.writeStaticString("-")
            }
        }
        buffer.writeStaticString("\" \"")
        buffer.writeBytes(client)
        buffer.writeStaticString("\" \"")
        if let backend = entry.backend { buffer.writeString(backend.addressText) } else { buffer.writeStaticString("-") }
        buffer.writeStaticString("\" vcap_request_id:\"")
        if let id = entry.requestID { id.write(into: &buffer) } else { buffer.writeStaticString("-") }
        buffer.writeStaticString("\" response_time:")
        Self.seconds(entry.durationNanoseconds, into: &buffer)
        buffer.writeStaticString(" app_id:\"")
        if let backend = entry.backend { buffer.writeBytes(backend.appGUIDBytes) } else { buffer.writeStaticString("-") }
        buffer.writeStaticString("\" app_index:\"")
        if let backend = entry.backend { buffer.writeBytes(backend.indexBytes) } else { buffer.writeStaticString("-") }
        buffer.writeStaticString("\" x_cf_routererror:\"")
        if let code = entry.routerError { buffer.writeString(code.rawValue) } else { buffer.writeStaticString("-") }
        buffer.writeStaticString("\"\n")
    }

    /// Hands the gathered lines to the sink.
    mutating func flush(to sink: AccessLogSink) {
        guard buffer.readableBytes > 0 else { return }
        sink.write(buffer)
        buffer.clear()
    }

    /// Quotes and backslashes are escaped, and anything outside printable ASCII is written as
    /// `\xHH`, so a client cannot forge or break a log line.
    static func escaped(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        var start = 0
        for i in 0..<bytes.count {
            let c = bytes[i]
            if c >= 0x20 && c < 0x7F && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") { continue }
            if i > start { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<i])) }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") {
                buffer.writeInteger(UInt8(ascii: "\\"))
                buffer.writeInteger(c)
            } else {
                let digits: StaticString = "0123456789abcdef"
                buffer.writeStaticString("\\x")
                buffer.writeInteger(digits.utf8Start[Int(c >> 4)])
                buffer.writeInteger(digits.utf8Start[Int(c & 0xF)])
            }
            start = i + 1
        }
        if start < bytes.count { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<bytes.count])) }
    }

    static func decimal(_ value: Int64, into buffer: inout ByteBuffer) {
        if value < 0 {
            buffer.writeInteger(UInt8(ascii: "-"))
            decimal(value == Int64.min ? Int64.max : -value, into: &buffer)
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = value
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[19 - n] = UInt8(truncatingIfNeeded: v % 10) + 0x30
                v /= 10
                n += 1
            } while v > 0
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: d[(20 - n)..<20]))
        }
    }

    /// Nanoseconds as seconds with six decimals (`0.000123`).
    static func seconds(_ nanoseconds: Int64, into buffer: inout ByteBuffer) {
        let micros = max(0, nanoseconds / 1000)
        decimal(micros / 1_000_000, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        let fraction = micros % 1_000_000
        var divisor: Int64 = 100_000
        while divisor > 0 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: (fraction / divisor) % 10) + 0x30)
            divisor /= 10
        }
    }
}

/// Wall-clock time as seconds and milliseconds since the epoch.
struct WallTime: Sendable {
    var seconds: Int
    var milliseconds: Int

    static func now() -> WallTime {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return WallTime(seconds: ts.tv_sec, milliseconds: ts.tv_nsec / 1_000_000)
    }
}

/// ISO 8601 UTC timestamps with milliseconds; the date part is formatted once per second.
struct WallClockCache {
    private var second = -1
    private var prefix = [UInt8](repeating: 0, count: 20)

    mutating func write(_ time: WallTime, into buffer: inout ByteBuffer) {
        if time.seconds != second {
            second = time.seconds
            var t = time_t(time.seconds)
            var parts = tm()
            gmtime_r(&t, &parts)
            var text = ""
            func pad(_ v: Int32, _ width: Int) -> String {
                let s = String(v)
                return String(repeating: "0", count: max(0, width - s.count)) + s
            }
            text = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
                + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            prefix = Array(text.utf8)
        }
        buffer.writeBytes(prefix)
        let ms = time.milliseconds
        buffer.writeInteger(UInt8(ms / 100) + 0x30)
        buffer.writeInteger(UInt8((ms / 10) % 10) + 0x30)
        buffer.writeInteger(UInt8(ms % 10) + 0x30)
        buffer.writeInteger(UInt8(ascii: "Z"))
    }
}
