#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Subprocess

/// Where a child's standard stream goes.
public enum StdioTarget: Sendable {
    /// `/dev/null`.
    case null
    /// Appended to a file (created 0640 if missing); as stdin, read from it.
    case file(String)
    /// Captured into an anonymous temporary file and returned.
    case capture
}

/// What a finished program left behind.
public struct CommandResult: Sendable {
    /// Exit status, or 128 + signal when it died of a signal.
    public var status: Int32
    /// Captured standard output (empty unless `.capture`).
    public var stdout: Data
    /// Captured standard error (empty unless `.capture`).
    public var stderr: Data
}

/// Runs a program by argument vector — never through a shell — with a time limit.
///
/// The child leads a session and process group of its own, with an empty signal mask and
/// default signal dispositions: a Swift process blocks the signals its handlers wait for
/// (SIGTERM among them) and a mask survives exec, so runc and the container would be deaf to
/// them otherwise.
///
/// At the deadline the whole group gets SIGTERM, then SIGKILL after ``killGrace``. The caller
/// gets `.timeout` as soon as the child is reaped, and at the latest ``reapGrace`` after the
/// SIGKILL even when the exit is never observed (a child in a frozen cgroup, or stuck in the
/// kernel): no path leaves the caller waiting. A cancelled caller counts as a timeout.
///
/// Captured output goes to unlinked temporary files rather than pipes: a pipe whose write end
/// a daemonised grandchild inherits (runc's container init, the shim) would never reach EOF.
public enum CommandRunner {
    /// How much of standard error an error keeps.
    public static let stderrTailBytes = 2048
    /// Time between SIGTERM and SIGKILL to the group of a child past its deadline.
    static let killGrace: Duration = .seconds(2)
    /// How long after the SIGKILL the caller still waits for the exit to be observed.
    static let reapGrace: Duration = .seconds(1)

    /// Runs `executable` with `arguments` and returns its status and captured output; a
    /// non-zero exit is a result, not an error. Throws `.launchFailed` when the program cannot
    /// be started and `.timeout` when it outlives `timeout` or the calling task is cancelled.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        stdin: StdioTarget = .null,
        stdout: StdioTarget = .capture,
        stderr: StdioTarget = .capture,
        timeout: Duration
    ) async throws -> CommandResult {
        let command = "\(executable) \(arguments.first ?? "")"
        guard !Task.isCancelled else {
            throw ContainerError(.timeout, "\(command) was not started: the caller was cancelled")
        }
        let streams = try ChildStreams(stdin: stdin, stdout: stdout, stderr: stderr)
        let watch = ChildWatch(killGrace: killGrace, reapGrace: reapGrace)
        let descriptors = streams.child
        let outcome = await watch.run(timeout: timeout) {
            await spawnAndWait(executable, arguments, descriptors, watch)
        }
        if watch.expired {
            throw ContainerError(.timeout, "\(command) timed out after \(timeout)", stderrTail: tailText(streams.tail(of: .stderr)))
        }
        switch outcome {
        case .exited(let status):
            return CommandResult(status: status, stdout: streams.captured(.stdout), stderr: streams.captured(.stderr))
        case .failed(let error):
            throw error
        case .abandoned:
            // Only an expired watch abandons its child, and that was answered above.
            throw ContainerError(.timeout, "\(command) timed out after \(timeout)")
        }
    }

    /// Starts the child through swift-subprocess and waits for its exit: the status as a
    /// shell reports it (128 + signal for a signalled child), or why there is none.
    ///
    /// Owns `descriptors`: swift-subprocess closes them once the child has them (or the spawn
    /// failed), and they are closed here when the deadline passed before anything started.
    private static func spawnAndWait(
        _ executable: String, _ arguments: [String], _ descriptors: ChildStreams.Descriptors, _ watch: ChildWatch
    ) async -> ChildWatch.Outcome {
        guard !watch.expired else {
            descriptors.close()
            return .failed(ContainerError(.timeout, "\(executable) was not started: its deadline passed first"))
        }
        var options = PlatformOptions()
        // A session of its own makes the child the leader of a new process group too (pgid ==
        // pid), so the deadline can signal every process it started. Asking for both also has
        // swift-subprocess fork, empty the mask and reset the dispositions itself rather than
        // use posix_spawn, whose glibc child sets the C library's own signals (32 and 33) to
        // ignored; an ignored signal survives exec, so runc and the container would inherit
        // it. Those two keep this process's dispositions instead: default, unless this process
        // was itself started by posix_spawn.
        options.createSession = true
        options.processGroupID = 0
        do {
            // The descriptor and path types come from swift-system, which this package does
            // not name; they are reached through the Subprocess signatures.
            let result = try await Subprocess.run(
                .path(.init(executable)),
                arguments: Arguments(arguments),
                platformOptions: options,
                input: .fileDescriptor(.init(rawValue: descriptors.stdin), closeAfterSpawningProcess: true),
                output: .fileDescriptor(.init(rawValue: descriptors.stdout), closeAfterSpawningProcess: true),
                error: .fileDescriptor(.init(rawValue: descriptors.stderr), closeAfterSpawningProcess: true)
            ) { execution in
                watch.started(group: execution.processIdentifier.value)
            }
            switch result.terminationStatus {
            case .exited(let code): return .exited(code)
            case .signaled(let signal): return .exited(128 + signal)
            }
        } catch {
            let cause: any Error & Sendable = (error as? SubprocessError) ?? ContainerError("\(error)")
            guard watch.group != nil else {
                return .failed(ContainerError(.launchFailed, "cannot start \(executable)", cause: cause))
            }
            return .failed(ContainerError(.other, "\(executable) started, but its exit could not be observed", cause: cause))
        }
    }

    /// `d` in nanoseconds, for Dispatch.
    static func nanoseconds(_ d: Duration) -> Int {
        let (seconds, attoseconds) = d.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, carry) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        guard !overflow, !carry else { return seconds < 0 ? 0 : Int.max }
        return Int(clamping: total)
    }

    /// The last ``stderrTailBytes`` of `data` as text.
    public static func tailText(_ data: Data) -> String {
        String(decoding: data.suffix(stderrTailBytes), as: UTF8.self)
    }
}
