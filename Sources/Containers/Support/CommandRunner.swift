#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Where a child's standard stream goes.
enum StdioTarget: Sendable {
    /// `/dev/null`.
    case null
    /// Appended to a file (created 0640 if missing).
    case file(String)
    /// Captured into an anonymous temporary file and returned.
    case capture
}

/// What a finished program left behind.
struct CommandResult: Sendable {
    /// Exit status, or 128 + signal when it died of a signal.
    var status: Int32
    /// Captured standard output (empty unless `.capture`).
    var stdout: Data
    /// Captured standard error (empty unless `.capture`).
    var stderr: Data
}

/// Runs a program by argument vector — never through a shell — with a time limit.
///
/// Captured output goes to unlinked temporary files rather than pipes: a pipe whose write end
/// a daemonised grandchild inherits (runc's container init) would never reach EOF.
enum CommandRunner {
    /// How much of standard error an error keeps.
    static let stderrTailBytes = 2048

    static func run(
        _ executable: String,
        _ arguments: [String],
        stdin: StdioTarget = .null,
        stdout: StdioTarget = .capture,
        stderr: StdioTarget = .capture,
        timeout: Duration
    ) async throws -> CommandResult {
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdinHandle = try handle(for: stdin, reading: true)
        let stdoutHandle = try handle(for: stdout, reading: false)
        let stderrHandle = try handle(for: stderr, reading: false)
        process.standardInput = stdinHandle
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        defer {
            try? stdinHandle.close()
            try? stdoutHandle.close()
            try? stderrHandle.close()
        }

        let waiter = ExitWaiter()
        process.terminationHandler = { finished in
            let status = finished.terminationReason == .uncaughtSignal ? 128 + finished.terminationStatus : finished.terminationStatus
            waiter.finish(status)
        }
        do {
            try process.run()
        } catch {
            throw ContainerError(.launchFailed, "cannot start \(executable)", cause: error)
        }
        let pid = process.processIdentifier

        // The deadline is enforced by a Dispatch timer that signals the child itself, so it holds
        // even when the cooperative pool is busy with other work; a cancelled caller counts as
        // a timeout: the child must not outlive the request.
        let deadline = Deadline(pid: pid, waiter: waiter)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Self.nanoseconds(timeout))) { deadline.expire() }
        let status = await withTaskCancellationHandler {
            await waiter.waitUntilExit()
        } onCancel: {
            deadline.expire()
        }
        if deadline.fired {
            let tail = tailText(readAll(stderrHandle, capture: stderr))
            throw ContainerError(.timeout, "\(executable) \(arguments.first ?? "") timed out after \(timeout)", stderrTail: tail)
        }
        return CommandResult(
            status: status,
            stdout: readAll(stdoutHandle, capture: stdout),
            stderr: readAll(stderrHandle, capture: stderr)
        )
    }

    /// The last ``stderrTailBytes`` of `data` as text.
    static func nanoseconds(_ d: Duration) -> Int {
        let (seconds, attoseconds) = d.components
        return Int(clamping: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    static func tailText(_ data: Data) -> String {
        String(decoding: data.suffix(stderrTailBytes), as: UTF8.self)
    }

    private static func handle(for target: StdioTarget, reading: Bool) throws -> FileHandle {
        let fd: Int32
        switch target {
        case .null:
            fd = open("/dev/null", reading ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ContainerError.systemCall("open", "/dev/null", errno: errno) }
        case .file(let path):
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw ContainerError.systemCall("open", path, errno: errno) }
        case .capture:
            fd = try anonymousFile()
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// A read-write file whose name is unlinked at once, so nothing is left behind.
    private static func anonymousFile() throws -> Int32 {
        let directory = FileManager.default.temporaryDirectory.path
        var template = Array("\(directory)/cf-like-capture-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer in
            // The buffer is a non-empty NUL-terminated array, so baseAddress is non-nil.
            mkstemp(buffer.baseAddress!)
        }
        guard fd >= 0 else { throw ContainerError.systemCall("mkstemp", directory, errno: errno) }
        template.withUnsafeBufferPointer { buffer in _ = unlink(buffer.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    private static func readAll(_ handle: FileHandle, capture: StdioTarget) -> Data {
        guard case .capture = capture else { return Data() }
        do {
            try handle.seek(toOffset: 0)
            return try handle.readToEnd() ?? Data()
        } catch {
            return Data()
        }
    }
}

/// Sends TERM to a child still running at its deadline, then KILL two seconds later.
private final class Deadline: Sendable {
    private let pid: pid_t
    private let waiter: ExitWaiter
    private let state = Mutex(false)

    init(pid: pid_t, waiter: ExitWaiter) {
        self.pid = pid
        self.waiter = waiter
    }

    /// Whether the deadline passed (or the caller gave up) before the child exited.
    var fired: Bool { state.withLock { $0 } }

    func expire() {
        let fire = state.withLock { fired -> Bool in
            guard !fired, !waiter.isFinished else { return false }
            fired = true
            return true
        }
        guard fire else { return }
        // TERM first (runc forwards it to the container process), then KILL.
        kill(pid, SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) { [waiter, pid] in
            if !waiter.isFinished { kill(pid, SIGKILL) }
        }
    }
}

/// Hands a child's exit status from Foundation's termination handler to async waiters.
private final class ExitWaiter: Sendable {
    private struct State {
        var status: Int32?
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Int32?, Never>] = [:]
    }
    private let state = Mutex(State())

    var isFinished: Bool { state.withLock { $0.status != nil } }

    /// The exit status, whenever the child exits.
    func waitUntilExit() async -> Int32 {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        // Without an expiry the waiter only ever resumes with a status.
        return await registered(id) ?? -1
    }

    func finish(_ status: Int32) {
        let waiters = state.withLock { state in
            state.status = status
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    private func registered(_ id: Int) async -> Int32? {
        await withCheckedContinuation { continuation in
            let immediate = state.withLock { state -> Int32?? in
                if let status = state.status { return .some(status) }
                state.waiters[id] = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }
}
