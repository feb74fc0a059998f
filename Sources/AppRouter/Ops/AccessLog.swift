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
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, base + offset, bytes.count - offset)
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
    /// The line is written into memory reserved once for its largest possible size.
    mutating func append(_ entry: AccessLogEntry, fields: ByteBuffer, lengths: (host: Int, requestLine: Int, userAgent: Int),
                         client: [UInt8], clock: inout WallClockCache) {
        let backend = entry.backend
        let bound = 512 + lengths.host + 4 * (lengths.requestLine + lengths.userAgent) + client.count
            + (backend.map { $0.addressBytes.count + $0.appGUIDBytes.count + $0.indexBytes.count } ?? 3)
        _ = fields.withUnsafeReadableBytes { f in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { out in
                var w = LineWriter(out)
                let host = lengths.host
                if host > 0 { w.put(UnsafeRawBufferPointer(rebasing: f[0..<host])) } else { w.put(UInt8(ascii: "-")) }
                w.put(" - [")
                clock.write(entry.startWall, into: &w)
                w.put("] \"")
                w.escaped(UnsafeRawBufferPointer(rebasing: f[host..<(host + lengths.requestLine)]))
                w.put("\" ")
                w.decimal(Int64(entry.status))
                w.put(UInt8(ascii: " "))
                w.decimal(entry.bytesReceived)
                w.put(UInt8(ascii: " "))
                w.decimal(entry.bytesSent)
                w.put(" \"")
                let agent = host + lengths.requestLine
                if lengths.userAgent > 0 {
                    w.escaped(UnsafeRawBufferPointer(rebasing: f[agent..<(agent + lengths.userAgent)]))
                } else {
                    w.put(UInt8(ascii: "-"))
                }
                w.put("\" \"")
                w.put(client)
                w.put("\" \"")
                if let backend { w.put(backend.addressBytes) } else { w.put(UInt8(ascii: "-")) }
                w.put("\" vcap_request_id:\"")
                if let id = entry.requestID { w.requestID(id) } else { w.put(UInt8(ascii: "-")) }
                w.put("\" response_time:")
                w.seconds(entry.durationNanoseconds)
                w.put(" app_id:\"")
                if let backend { w.put(backend.appGUIDBytes) } else { w.put(UInt8(ascii: "-")) }
                w.put("\" app_index:\"")
                if let backend { w.put(backend.indexBytes) } else { w.put(UInt8(ascii: "-")) }
                w.put("\" x_cf_routererror:\"")
                if let code = entry.routerError { w.put(code.text) } else { w.put(UInt8(ascii: "-")) }
                w.put("\"\n")
                return w.offset
            }
        }
    }

    /// Hands the gathered lines to the sink.
    mutating func flush(to sink: AccessLogSink) {
        guard buffer.readableBytes > 0 else { return }
        sink.write(buffer)
        buffer.clear()
    }

    /// Writes `bytes` escaped as in a log line.
    static func escaped(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 * bytes.count) { out in
            var w = LineWriter(out)
            w.escaped(bytes)
            return w.offset
        }
    }

    /// Writes a decimal number.
    static func decimal(_ value: Int64, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { out in
            var w = LineWriter(out)
            w.decimal(value)
            return w.offset
        }
    }

    /// Writes nanoseconds as seconds with six decimals.
    static func seconds(_ nanoseconds: Int64, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 28) { out in
            var w = LineWriter(out)
            w.seconds(nanoseconds)
            return w.offset
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
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 24) { out in
            var w = LineWriter(out)
            write(time, into: &w)
            return w.offset
        }
    }

    mutating func write(_ time: WallTime, into w: inout LineWriter) {
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
        w.put(prefix)
        let ms = time.milliseconds
        w.put(UInt8(ms / 100) + 0x30)
        w.put(UInt8((ms / 10) % 10) + 0x30)
        w.put(UInt8(ms % 10) + 0x30)
        w.put(UInt8(ascii: "Z"))
    }
}

/// Writes into memory reserved beforehand: no capacity or uniqueness check per piece. The
/// caller reserves enough for everything it writes.
struct LineWriter {
    private let out: UnsafeMutableRawBufferPointer
    private(set) var offset = 0

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    @inline(__always)
    mutating func put(_ byte: UInt8) {
        out[offset] = byte
        offset += 1
    }

    @inline(__always)
    mutating func put(_ text: StaticString) {
        put(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let source = bytes.baseAddress, let target = out.baseAddress else { return }
        precondition(offset + bytes.count <= out.count, "line writer overflow")
        (target + offset).copyMemory(from: source, byteCount: bytes.count)
        offset += bytes.count
    }

    @inline(__always)
    mutating func put(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { put($0) }
    }

    /// Quotes and backslashes are escaped, and anything outside printable ASCII is written as
    /// `\xHH`, so a client cannot forge or break a log line (up to 4 bytes per byte).
    mutating func escaped(_ bytes: UnsafeRawBufferPointer) {
        let digits: StaticString = "0123456789abcdef"
        var start = 0
        for i in 0..<bytes.count {
            let c = bytes[i]
            if c >= 0x20 && c < 0x7F && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") { continue }
            put(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") {
                put(UInt8(ascii: "\\"))
                put(c)
            } else {
                put(UInt8(ascii: "\\"))
                put(UInt8(ascii: "x"))
                put(digits.utf8Start[Int(c >> 4)])
                put(digits.utf8Start[Int(c & 0xF)])
            }
            start = i + 1
        }
        put(UnsafeRawBufferPointer(rebasing: bytes[start..<bytes.count]))
    }

    mutating func decimal(_ value: Int64) {
        if value < 0 {
            put(UInt8(ascii: "-"))
            decimal(value == Int64.min ? Int64.max : -value)
            return
        }
        var divisor: Int64 = 1
        while divisor <= value / 10 { divisor *= 10 }
        var v = value
        while divisor > 0 {
            put(UInt8(truncatingIfNeeded: v / divisor) + 0x30)
            v %= divisor
            divisor /= 10
        }
    }

    /// Nanoseconds as seconds with six decimals (`0.000123`).
    mutating func seconds(_ nanoseconds: Int64) {
        let micros = max(0, nanoseconds / 1000)
        decimal(micros / 1_000_000)
        put(UInt8(ascii: "."))
        let fraction = micros % 1_000_000
        var divisor: Int64 = 100_000
        while divisor > 0 {
            put(UInt8(truncatingIfNeeded: (fraction / divisor) % 10) + 0x30)
            divisor /= 10
        }
    }

    mutating func requestID(_ id: RequestID) {
        guard let target = out.baseAddress else { return }
        precondition(offset + RequestID.textLength <= out.count, "line writer overflow")
        id.write(to: target + offset)
        offset += RequestID.textLength
    }
}
