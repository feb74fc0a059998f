import Glibc

/// Cuts a byte stream into lines; a line longer than `maxLine` bytes leaves in pieces of `maxLine`.
struct LineSplitter {
    let maxLine: Int
    private var pending: [UInt8] = []

    init(maxLine: Int) {
        self.maxLine = maxLine
    }

    /// Feeds `bytes`, calling `emit` with each complete line (without its newline).
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        guard let base = bytes.baseAddress else { return }
        var start = 0
        while start < bytes.count {
            guard let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
                if pending.count > maxLine { emitOverlong(emit) }
                return
            }
            let end = UnsafeRawPointer(found) - base
            let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
            if pending.isEmpty {
                emitPieces(line, emit)
            } else {
                pending.append(contentsOf: line)
                pending.withUnsafeBytes { emitPieces($0, emit) }
                pending.removeAll(keepingCapacity: true)
            }
            start = end + 1
        }
    }

    /// Emits what is left after the stream ended without a final newline.
    mutating func finish(_ emit: (UnsafeRawBufferPointer) -> Void) {
        guard !pending.isEmpty else { return }
        pending.withUnsafeBytes { emitPieces($0, emit) }
        pending.removeAll()
    }

    private func emitPieces(_ line: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        var rest = line
        while rest.count > maxLine {
            emit(UnsafeRawBufferPointer(rebasing: rest[..<maxLine]))
            rest = UnsafeRawBufferPointer(rebasing: rest[maxLine...])
        }
        emit(rest)
    }

    /// Sends full pieces of an unfinished line on, so memory stays bounded by `maxLine`.
    private mutating func emitOverlong(_ emit: (UnsafeRawBufferPointer) -> Void) {
        var sent = 0
        pending.withUnsafeBytes { all in
            while all.count - sent > maxLine {
                emit(UnsafeRawBufferPointer(rebasing: all[sent..<(sent + maxLine)]))
                sent += maxLine
            }
        }
        pending.removeFirst(sent)
    }
}

/// A token bucket: `rate` tokens a second, holding at most `burst`.
struct TokenBucket {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private var lastRefill: Int64

    init(rate: Int, burst: Int, now: Int64) {
        self.rate = Double(rate)
        self.burst = Double(burst)
        tokens = Double(burst)
        lastRefill = now
    }

    /// Adds the tokens earned since the last refill.
    mutating func refill(now: Int64) {
        guard now > lastRefill else { return }
        tokens = min(burst, tokens + Double(now - lastRefill) * rate / 1e9)
        lastRefill = now
    }

    /// Takes one token if there is one.
    mutating func take() -> Bool {
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// The on-disk log: `log`, and `log.1` once it grows past half the budget, so the two stay
/// under `maxBytes` together. Records are `<unix-ns> <O|E|S> <text>\n`, written in batches.
final class LogFile {
    let path: String
    let rotatedPath: String
    /// Each file stays at or under this many bytes.
    let maxFileBytes: Int
    private var fd: Int32
    private var size: Int
    private var buffer: [UInt8] = []
    /// How many writes failed (disk full, ...); their records are lost.
    private(set) var failedWrites = 0

    init(directory: String, maxBytes: Int) throws(ShimFailure) {
        path = directory + "/log"
        rotatedPath = directory + "/log.1"
        maxFileBytes = maxBytes / 2
        fd = Posix.openAppend(path)
        guard fd >= 0 else { throw ShimFailure("cannot open \(path): \(Posix.errnoText(errno))") }
        var info = stat()
        size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        buffer.reserveCapacity(Self.flushThreshold + 70_000)
    }

    /// Pending bytes are written once they pass this.
    static let flushThreshold = 256 << 10

    /// Queues one record, rotating first when it would take `log` past its share.
    func append(timestamp: Int64, tag: UInt8, text: UnsafeRawBufferPointer) {
        let length = Self.decimalLength(timestamp) + 4 + text.count
        if size + buffer.count + length > maxFileBytes, size + buffer.count > 0 {
            rotate()
        }
        Self.appendDecimal(timestamp, to: &buffer)
        buffer.append(UInt8(ascii: " "))
        buffer.append(tag)
        buffer.append(UInt8(ascii: " "))
        buffer.append(contentsOf: text)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= Self.flushThreshold { flush() }
    }

    /// Writes the queued records in one write.
    func flush() {
        guard !buffer.isEmpty else { return }
        if fd < 0 {
            // The last rotation could not create a new file; try again.
            fd = Posix.openAppend(path)
            size = 0
        }
        if fd >= 0, Posix.writeAll(fd, buffer) {
            size += buffer.count
        } else {
            failedWrites += 1
            var info = stat()
            if fd >= 0, fstat(fd, &info) == 0 { size = Int(info.st_size) }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// `log` becomes `log.1` (replacing the older one) and a new `log` starts.
    private func rotate() {
        flush()
        if fd >= 0 { close(fd) }
        if rename(path, rotatedPath) != 0 {
            // Could not keep it: start over rather than grow past the budget.
            unlink(path)
        }
        // If this fails, flush() tries again; until then records are counted as lost.
        fd = Posix.openAppend(path)
        size = 0
    }

    private static func decimalLength(_ value: Int64) -> Int {
        var length = value < 0 ? 2 : 1
        var rest = value.magnitude
        while rest >= 10 {
            rest /= 10
            length += 1
        }
        return length
    }

    private static func appendDecimal(_ value: Int64, to buffer: inout [UInt8]) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value.magnitude
        withUnsafeMutableBytes(of: &digits) { slots in
            repeat {
                slots[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            for index in stride(from: count - 1, through: 0, by: -1) {
                buffer.append(slots[index])
            }
        }
    }
}

/// Applies the rate limit to app lines and writes what passes; says how many it dropped.
final class LogRelay {
    let file: LogFile
    private var bucket: TokenBucket
    private let linesPerSecond: Int
    private var dropped = 0
    /// When the last notice of dropped lines was written (monotonic); nil before the first.
    private var lastNotice: Int64?

    /// Notices of dropped lines come at most this often while a flood lasts.
    static let noticeInterval: Int64 = 1_000_000_000

    init(file: LogFile, linesPerSecond: Int, burst: Int) {
        self.file = file
        self.linesPerSecond = linesPerSecond
        bucket = TokenBucket(rate: linesPerSecond, burst: burst, now: Posix.monotonicNanoseconds())
    }

    /// Call once per batch of lines read at the same moment.
    func refill(now: Int64) {
        bucket.refill(now: now)
    }

    /// One app line (`O` or `E`): kept if the bucket allows, else counted as dropped.
    func appLine(_ text: UnsafeRawBufferPointer, tag: UInt8, timestamp: Int64, now: Int64) {
        guard bucket.tokens >= 1 else {
            dropped += 1
            return
        }
        if dropped > 0, noticeDue(now) {
            notice(timestamp: timestamp, now: now)
        }
        _ = bucket.take()
        file.append(timestamp: timestamp, tag: tag, text: text)
    }

    /// A line of the shim's own (`S`), never rate limited.
    func system(_ text: String, timestamp: Int64 = Posix.unixNanoseconds()) {
        var text = text
        text.withUTF8 { file.append(timestamp: timestamp, tag: UInt8(ascii: "S"), text: UnsafeRawBufferPointer($0)) }
    }

    /// Between reads: report drops once tokens are back.
    func tick(now: Int64) {
        bucket.refill(now: now)
        if dropped > 0, bucket.tokens >= 1, noticeDue(now) {
            notice(timestamp: Posix.unixNanoseconds(), now: now)
        }
        file.flush()
    }

    /// At the end: whatever was dropped is reported, and everything is written.
    func finish() {
        if dropped > 0 { notice(timestamp: Posix.unixNanoseconds(), now: Posix.monotonicNanoseconds()) }
        file.flush()
    }

    private func noticeDue(_ now: Int64) -> Bool {
        guard let lastNotice else { return true }
        return now - lastNotice >= Self.noticeInterval
    }

    private func notice(timestamp: Int64, now: Int64) {
        system("cf-like: dropped \(dropped) log lines (over \(linesPerSecond) lines/s)", timestamp: timestamp)
        dropped = 0
        lastNotice = now
    }
}
