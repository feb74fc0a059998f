import CShimSupport
import Glibc

/// Why the shim could not start the container, in words for the agent.
struct ShimFailure: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// One of the container's output pipes, read without blocking.
final class OutputPipe {
    let fd: Int32
    let tag: UInt8
    var splitter: LineSplitter
    private(set) var atEOF = false
    /// While set, the last bytes read are also kept here (runc's complaints at create time).
    var tee: [UInt8]?

    init(fd: Int32, tag: UInt8, maxLine: Int) {
        self.fd = fd
        self.tag = tag
        splitter = LineSplitter(maxLine: maxLine)
    }

    /// Reads what is there (up to `budget` bytes, so one stream cannot starve the other) into `relay`.
    func drain(into relay: LogRelay, scratch: UnsafeMutableRawBufferPointer, budget: Int = 1 << 20) {
        var taken = 0
        while !atEOF, taken < budget {
            let count = read(fd, scratch.baseAddress, scratch.count)
            if count < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN { finish(into: relay) }
                return
            }
            if count == 0 {
                finish(into: relay)
                return
            }
            taken += count
            let bytes = UnsafeRawBufferPointer(rebasing: scratch[..<count])
            if tee != nil { Supervisor.keepTail(&tee, bytes) }
            let timestamp = Posix.unixNanoseconds()
            let now = Posix.monotonicNanoseconds()
            relay.refill(now: now)
            splitter.feed(bytes) { line in relay.appLine(line, tag: tag, timestamp: timestamp, now: now) }
        }
    }

    /// Stops reading and emits an unfinished last line.
    func finish(into relay: LogRelay) {
        atEOF = true
        let timestamp = Posix.unixNanoseconds()
        let now = Posix.monotonicNanoseconds()
        splitter.finish { line in relay.appLine(line, tag: tag, timestamp: timestamp, now: now) }
    }
}

/// The shim's event loop: runs runc, then relays the container's output and reaps it.
final class Supervisor {
    let options: ShimOptions
    let relay: LogRelay
    let stdout: OutputPipe
    let stderr: OutputPipe
    /// Write ends handed to the container (closed once it runs).
    private var writeEnds: [Int32]
    private let wakeFD: Int32
    private let scratch: UnsafeMutableRawBufferPointer
    /// Exit status of the container's init, once reaped.
    private(set) var containerStatus: Int32?
    private var containerPID: pid_t = -1
    /// How long runc took to start the container, for the shim's own log.
    private(set) var startTimings = ""

    /// Poll interval of the loop.
    static let pollMilliseconds: Int32 = 250
    /// How long output is still drained after the container's init exited.
    static let drainAfterExit: Int64 = 2_000_000_000
    /// runc run / delete get this long before they are killed.
    static let runcTimeout: Int64 = 120_000_000_000
    /// How much of runc's output a failure keeps.
    static let tailBytes = 4096

    init(options: ShimOptions) throws(ShimFailure) {
        self.options = options
        let file = try LogFile(directory: options.stateDir, maxBytes: options.logMaxBytes)
        relay = LogRelay(file: file, linesPerSecond: options.linesPerSecond, burst: options.burst)
        let maxLine = min(64 << 10, file.maxFileBytes - 64)
        guard let out = Posix.makePipe(), let err = Posix.makePipe() else {
            throw ShimFailure("cannot create output pipes: \(Posix.errnoText(errno))")
        }
        for fd in [out.read, err.read] {
            Posix.setNonBlocking(fd)
            // A larger pipe gives the app slack while the shim writes to disk.
            _ = cflike_set_pipe_size(fd, 1 << 20)
        }
        stdout = OutputPipe(fd: out.read, tag: UInt8(ascii: "O"), maxLine: maxLine)
        stderr = OutputPipe(fd: err.read, tag: UInt8(ascii: "E"), maxLine: maxLine)
        writeEnds = [out.write, err.write]
        wakeFD = cflike_sigchld_wakeup_fd()
        guard wakeFD >= 0 else { throw ShimFailure("cannot install SIGCHLD handler: \(Posix.errnoText(errno))") }
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    }

    // MARK: Starting the container

    /// `runc run --detach` (create and start in one runc); returns the container's init pid.
    /// Cleans up on failure.
    ///
    /// The container inherits runc's stdio, so runc gets the pipes; its own complaints land on
    /// the stderr pipe too, and are kept for the failure message. The container's init is
    /// runc's child until runc exits, then the shim's (it is a subreaper): it is reaped here
    /// even when it ended before runc did, since it waits as a zombie for whoever inherits it.
    func startContainer() throws(ShimFailure) -> pid_t {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devNull >= 0 else { throw ShimFailure("cannot open /dev/null: \(Posix.errnoText(errno))") }
        defer { close(devNull) }
        let runcLog = options.stateDir + "/runc.log"
        let pidFile = options.stateDir + "/pid"
        // A state directory used before must not report the old container's end or pid.
        unlink(pidFile)
        unlink(options.stateDir + "/exit")

        stderr.tee = []
        let logStart = Self.fileSize(runcLog)
        let started = try run(
            ["--log", runcLog, "--log-format", "json", "run", "--detach", "--bundle", options.bundle, "--pid-file", pidFile, options.id],
            stdin: devNull, stdout: writeEnds[0], stderr: writeEnds[1])
        let output = stderr.tee ?? []
        stderr.tee = nil
        // A run that failed after runc wrote the pid leaves an init for cleanUp() to reap.
        let pid = Posix.readFile(pidFile, limit: 64).flatMap { Int32(String(decoding: $0, as: UTF8.self).trimmingWhitespace()) }
        if let pid, pid > 0 { containerPID = pid }
        guard started.succeeded else {
            let reason = Self.reason(output: output, runcLog: runcLog, from: logStart)
            cleanUp()
            throw ShimFailure("runc run \(started.outcome): \(reason)")
        }
        guard containerPID > 0 else {
            cleanUp()
            throw ShimFailure("runc run left no pid in \(pidFile)")
        }
        startTimings = "runc run --detach \(started.elapsedNanoseconds / 1_000_000) ms"
        // Only the container holds the write ends now, so EOF means it closed them.
        for fd in writeEnds { close(fd) }
        writeEnds = []
        return containerPID
    }

    /// `runc delete --force`, so a failed start leaves no container, process or cgroup.
    private func cleanUp() {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if devNull >= 0 { close(devNull) } }
        // The shim's own stdout/stderr (shim.log) take what delete says.
        let result = try? run(
            ["--log", options.stateDir + "/runc.log", "--log-format", "json", "delete", "--force", options.id],
            stdin: devNull >= 0 ? devNull : 0, stdout: 1, stderr: 2)
        if let result, !result.succeeded {
            Posix.writeAll(2, "cf-like-shim: runc delete --force \(options.id) \(result.outcome)\n")
        }
        for fd in writeEnds { close(fd) }
        writeEnds = []
        // delete killed the container's init, which is the shim's child by now: reap it here,
        // or it would linger as a zombie of whoever inherits it.
        let deadline = Posix.monotonicNanoseconds() + Self.drainAfterExit
        reapAll()
        while containerPID > 0, containerStatus == nil, Posix.monotonicNanoseconds() < deadline {
            pump(timeout: 20)
            reapAll()
        }
    }

    /// How a runc invocation ended.
    struct RuncResult {
        /// The wait status.
        var status: Int32
        /// Killed at ``Supervisor/runcTimeout``.
        var timedOut: Bool
        /// From spawn to reaping.
        var elapsedNanoseconds: Int64

        var succeeded: Bool { status == 0 && !timedOut }

        /// `exited 1`, `was killed by signal 9`, `timed out after 120 s`.
        var outcome: String {
            if timedOut { return "timed out after \(Supervisor.runcTimeout / 1_000_000_000) s" }
            let signal = status & 0x7f
            return signal == 0 ? "exited \((status >> 8) & 0xff)" : "was killed by signal \(signal)"
        }
    }

    /// Runs runc with the global flags, relaying the container's pipes meanwhile.
    private func run(_ arguments: [String], stdin: Int32, stdout out: Int32, stderr err: Int32) throws(ShimFailure) -> RuncResult {
        var argv = ["runc"]
        if let root = options.runcRoot { argv += ["--root", root] }
        if options.systemdCgroup { argv.append("--systemd-cgroup") }
        argv += arguments
        let pid = Self.spawn(options.runc, argv, stdin: stdin, stdout: out, stderr: err)
        guard pid > 0 else {
            throw ShimFailure("cannot run \(options.runc): \(Posix.errnoText(-pid))")
        }
        let began = Posix.monotonicNanoseconds()
        let deadline = began + Self.runcTimeout
        var timedOut = false
        while true {
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                return RuncResult(status: status, timedOut: timedOut, elapsedNanoseconds: Posix.monotonicNanoseconds() - began)
            }
            if reaped < 0, errno != EINTR {
                throw ShimFailure("cannot wait for runc: \(Posix.errnoText(errno))")
            }
            if !timedOut, Posix.monotonicNanoseconds() > deadline {
                kill(pid, SIGKILL)
                timedOut = true
            }
            pump(timeout: 50)
        }
    }

    // MARK: Relaying and reaping

    /// Relays output and reaps children until the container's init has exited and its pipes
    /// are closed (or ``drainAfterExit`` passed); returns the init's wait status.
    func supervise() -> Int32 {
        var exitedAt: Int64 = 0
        while true {
            let wasRunning = containerStatus == nil
            reapAll()
            let now = Posix.monotonicNanoseconds()
            if wasRunning, containerStatus != nil { exitedAt = now }
            if let status = containerStatus, (stdout.atEOF && stderr.atEOF) || now - exitedAt >= Self.drainAfterExit {
                for pipe in [stdout, stderr] where !pipe.atEOF { pipe.finish(into: relay) }
                relay.finish()
                return status
            }
            var timeout = Self.pollMilliseconds
            if containerStatus != nil {
                timeout = min(timeout, Int32(max(1, (Self.drainAfterExit - (now - exitedAt)) / 1_000_000)))
            }
            pump(timeout: timeout)
            relay.tick(now: Posix.monotonicNanoseconds())
        }
    }

    /// Collects every exited child (the subreaper inherits orphans); notes the container's init.
    private func reapAll() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid < 0, errno == EINTR { continue }
            guard pid > 0 else { return }
            if pid == containerPID, containerStatus == nil {
                containerStatus = status
            }
        }
    }

    /// One poll over the wake-up pipe and the open output pipes; drains what is ready.
    private func pump(timeout: Int32) {
        var fds: [pollfd] = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        let pipes = [stdout, stderr].filter { !$0.atEOF }
        for pipe in pipes { fds.append(pollfd(fd: pipe.fd, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        guard ready > 0 else { return }
        if fds[0].revents != 0 {
            var sink: UInt64 = 0
            while read(wakeFD, &sink, 8) > 0 {}
        }
        for (index, pipe) in pipes.enumerated() where fds[index + 1].revents != 0 {
            pipe.drain(into: relay, scratch: scratch)
        }
    }

    // MARK: Helpers

    static func spawn(_ path: String, _ arguments: [String], stdin: Int32, stdout: Int32, stderr: Int32) -> pid_t {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        return argv.withUnsafeBufferPointer { buffer in
            // The buffer is non-empty (it ends with nil), so its base address exists.
            cflike_spawn(path, buffer.baseAddress!, stdin, stdout, stderr)
        }
    }

    static func keepTail(_ buffer: inout [UInt8]?, _ bytes: UnsafeRawBufferPointer) {
        buffer?.append(contentsOf: bytes)
        if let count = buffer?.count, count > tailBytes { buffer?.removeFirst(count - tailBytes) }
    }

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// runc's own words: what it printed, else the error messages it logged since `offset`.
    static func reason(output: [UInt8], runcLog: String, from offset: Int) -> String {
        let printed = String(decoding: output, as: UTF8.self)
            .split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { String($0).trimmingWhitespace() }
            .filter { !$0.isEmpty }
        if !printed.isEmpty { return clip(printed.joined(separator: "; ")) }
        let fresh = Posix.readFile(runcLog, from: offset, limit: 64 << 10) ?? []
        let messages = String(decoding: fresh, as: UTF8.self).split(separator: "\n")
            .filter { $0.contains("\"level\":\"error\"") || $0.contains("\"level\":\"fatal\"") }
            .compactMap { jsonStringField("msg", in: String($0)) }
        return messages.isEmpty ? "runc gave no reason" : clip(messages.joined(separator: "; "))
    }

    /// The readiness line is one line, so reasons are kept to a readable length.
    private static func clip(_ text: String) -> String {
        let flat = String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
        return flat.utf8.count <= 1500 ? flat : "..." + String(decoding: flat.utf8.suffix(1500), as: UTF8.self)
    }

    /// The string value of `"key":"..."` in one line of JSON (runc's log format), unescaped.
    static func jsonStringField(_ key: String, in line: String) -> String? {
        let bytes = Array(line.utf8)
        let needle = Array("\"\(key)\":\"".utf8)
        guard bytes.count >= needle.count else { return nil }
        var start: Int?
        for index in 0...(bytes.count - needle.count) where bytes[index..<(index + needle.count)].elementsEqual(needle) {
            start = index + needle.count
            break
        }
        guard var index = start else { return nil }
        var value: [UInt8] = []
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { return String(decoding: value, as: UTF8.self) }
            if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                index += 1
                switch bytes[index] {
                case UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): value.append(UInt8(ascii: " "))
                case UInt8(ascii: "u"): value.append(UInt8(ascii: "?")); index += 4
                default: value.append(bytes[index])
                }
            } else {
                value.append(byte)
            }
            index += 1
        }
        return String(decoding: value, as: UTF8.self)
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
