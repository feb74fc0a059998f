#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// What a successful ``ContainerShim/launch(id:bundle:stateDir:timeout:)`` returns.
public struct ShimStarted: Sendable, Equatable {
    /// Host pid of the container's init process.
    public var containerPID: Int32
    /// Pid of the shim that owns the container's stdio and will reap it.
    public var shimPID: Int32

    /// A value.
    public init(containerPID: Int32, shimPID: Int32) {
        self.containerPID = containerPID
        self.shimPID = shimPID
    }
}

/// Starts containers through `cf-like-shim`, one shim per container, and reads what the
/// shims leave in their state directories.
///
/// The shim runs `runc run --detach` with the container's stdout and stderr on pipes it
/// owns, relays them into `<stateDir>/log` (rate-limited, rotated), reaps the
/// container's init as a child subreaper and writes `<stateDir>/exit`. It is its own session
/// and outlives the agent, so a restarted agent adopts a container by reading its state
/// directory: ``exit(stateDir:)``, ``shimAlive(stateDir:)`` and a ``ShimLogReader`` from a
/// saved position. The shim never deletes the container: the agent reads the cgroup's
/// counters (an OOM kill) first, then calls `runc delete`.
public struct ContainerShim: Sendable {
    /// The `cf-like-shim` executable.
    public var executable: String
    /// The runc the shim drives (its executable, `--root` and `--systemd-cgroup` are passed on).
    public var runc: Runc
    /// `log` and `log.1` together stay under this many bytes.
    public var logMaxBytes: Int
    /// Sustained app log lines a second (stdout and stderr together); more are dropped and counted.
    public var linesPerSecond: Int
    /// Lines that may pass at once above the sustained rate.
    public var burst: Int
    /// Where launches are logged.
    public var logger: Logger

    /// The smallest log budget the shim accepts.
    public static let minimumLogMaxBytes = 16 << 10

    /// A launcher; `executable` defaults to ``locate(searchPath:)``.
    public init(
        executable: String? = nil,
        runc: Runc,
        logMaxBytes: Int = 8 << 20,
        linesPerSecond: Int = 1000,
        burst: Int = 2000,
        logger: Logger
    ) throws {
        guard let found = executable ?? Self.locate() else {
            throw ContainerError(
                .launchFailed,
                "cf-like-shim not found next to \(Self.ownExecutable() ?? "this executable") nor on PATH; install it beside the agent")
        }
        guard FileManager.default.isExecutableFile(atPath: found) else {
            throw ContainerError(.launchFailed, "\(found) is not an executable file")
        }
        guard logMaxBytes >= Self.minimumLogMaxBytes else {
            throw ContainerError(.invalidArgument, "log budget \(logMaxBytes) bytes is below the minimum of \(Self.minimumLogMaxBytes)")
        }
        guard linesPerSecond > 0, burst > 0 else {
            throw ContainerError(.invalidArgument, "log rate \(linesPerSecond) lines/s and burst \(burst) must both be positive")
        }
        self.executable = found
        self.runc = runc
        self.logMaxBytes = logMaxBytes
        self.linesPerSecond = linesPerSecond
        self.burst = burst
        self.logger = logger
    }

    /// `cf-like-shim` in the directory of the running executable (where the package installs
    /// it), else on `searchPath`; nil if neither is executable. Build directories are not searched.
    public static func locate(searchPath: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        var candidates: [String] = []
        if let own = ownExecutable() {
            candidates.append((own as NSString).deletingLastPathComponent + "/cf-like-shim")
        }
        for dir in (searchPath ?? "").split(separator: ":") where dir.hasPrefix("/") {
            candidates.append(dir + "/cf-like-shim")
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private static func ownExecutable() -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    }

    // MARK: Launch

    /// Starts container `id` from `bundle` under a new shim keeping its files in `stateDir`
    /// (created 0700 if missing), and returns once the container's process runs.
    ///
    /// Throws `.commandFailed` with the shim's reason (runc's own words) when the container
    /// could not be started; the shim has then removed it again. On `.timeout` the shim is
    /// killed and the container force-deleted. A shim that died before its verdict has what it
    /// left running (the runc it was waiting for) killed and the container force-deleted too.
    public func launch(id: String, bundle: String, stateDir: String, timeout: Duration = .seconds(60)) async throws -> ShimStarted {
        try Runc.validate(id: id)
        let stateDir = Self.absolute(stateDir)
        let bundle = Self.absolute(bundle)
        do {
            try FileManager.default.createDirectory(
                atPath: stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ContainerError(.io, "cannot create shim state directory \(stateDir)", cause: error)
        }
        var arguments = ["--runc", runc.executable]
        if let root = runc.root { arguments += ["--runc-root", root] }
        if runc.systemdCgroup { arguments.append("--systemd-cgroup") }
        arguments += [
            "--id", id, "--bundle", bundle, "--state-dir", stateDir,
            "--log-max-bytes", String(logMaxBytes), "--log-rate", String(linesPerSecond), "--log-burst", String(burst),
        ]
        logger.debug("shim launch", metadata: ["container.id": "\(id)", "shim.state_dir": "\(stateDir)"])

        let result: CommandResult
        do {
            result = try await CommandRunner.run(executable, arguments, timeout: timeout)
        } catch let error as ContainerError where error.kind == .timeout {
            await abandon(id: id, stateDir: stateDir)
            throw ContainerError(
                .timeout, "container \(id) did not start within \(timeout); its shim was killed and the container deleted",
                stderrTail: error.stderrTail)
        }
        let verdict = String(decoding: result.stdout, as: UTF8.self)
            .split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
        let stderrTail = CommandRunner.tailText(result.stderr)
        if result.status == 0, verdict.hasPrefix("started "), let pid = Int32(verdict.dropFirst("started ".count)), pid > 0 {
            guard let shimPID = Self.shimPID(stateDir: stateDir) else {
                throw ContainerError(.io, "container \(id) started but its shim left no pid in \(stateDir)")
            }
            logger.debug("shim started", metadata: ["container.id": "\(id)", "container.pid": "\(pid)", "shim.pid": "\(shimPID)"])
            return ShimStarted(containerPID: pid, shimPID: shimPID)
        }
        // A shim that died before its verdict (killed, crashed) leaves the runc it was waiting
        // for running, and that runc could still create the container after this failure is
        // reported: what is left of the shim's process group goes first, then the container.
        if Self.leftoverGroup(stateDir: stateDir) != nil {
            await abandon(id: id, stateDir: stateDir)
        }
        if verdict.hasPrefix("failed ") {
            throw ContainerError(
                .commandFailed, "container \(id) did not start: \(verdict.dropFirst("failed ".count))",
                exitStatus: result.status, stderrTail: stderrTail)
        }
        throw ContainerError(
            .launchFailed, "\(executable) gave no verdict for container \(id) (stdout: \(verdict.debugDescription))",
            exitStatus: result.status, stderrTail: stderrTail)
    }

    /// After a timed-out or failed launch: the shim and whatever it created go.
    private func abandon(id: String, stateDir: String) async {
        if let group = Self.leftoverGroup(stateDir: stateDir) {
            // The shim leads its own session and process group, which holds the runc it waits
            // for: kill them together so no half-finished runc is left running, also when the
            // shim itself is already dead.
            kill(-group, SIGKILL)
        }
        // A cancelled launch ends here too, and a cancelled caller stops the commands it runs
        // (CommandRunner): delete from a task of its own, or the container is left behind.
        let runc = self.runc
        do {
            try await Task { try await runc.delete(id: id, force: true) }.value
        } catch {
            logger.warning(
                "cannot delete container after a failed launch",
                metadata: ["container.id": "\(id)", "error": "\(error)"])
        }
    }

    // MARK: Reading a state directory

    /// How the container ended, once its shim wrote `exit`; nil while it runs (or if unreadable).
    public static func exit(stateDir: String) -> ContainerExit? {
        exitRecord(stateDir: stateDir)?.exit
    }

    /// How and when the container ended, once its shim wrote `exit`.
    public static func exitRecord(stateDir: String) -> ShimExitRecord? {
        guard let text = readSmallFile(ShimStateDirectory.path(stateDir, ShimStateDirectory.exit)) else { return nil }
        return ShimExitRecord(line: text)
    }

    /// The container init's host pid (runc's pid file).
    public static func containerPID(stateDir: String) -> Int32? {
        readPID(ShimStateDirectory.path(stateDir, ShimStateDirectory.containerPID))
    }

    /// The shim's pid, as it wrote it.
    public static func shimPID(stateDir: String) -> Int32? {
        readPID(ShimStateDirectory.path(stateDir, ShimStateDirectory.shimPID))
    }

    /// Whether the shim of `stateDir` still runs: its pid is alive, not a zombie, and its
    /// command line names this state directory (so a reused pid is not mistaken for it).
    public static func shimAlive(stateDir: String) -> Bool {
        guard let pid = shimPID(stateDir: stateDir),
              let stat = readSmallFile("/proc/\(pid)/stat"),
              let nameEnd = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: nameEnd)...].drop { $0 == " " }.first
        guard let state, state != "Z", state != "X" else { return false }
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/cmdline"),
              let cmdline = try? handle.readToEnd()
        else { return false }
        try? handle.close()
        let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard let flag = arguments.firstIndex(of: "--state-dir"), flag + 1 < arguments.count else { return false }
        return absolute(arguments[flag + 1]) == absolute(stateDir)
    }

    /// The process group of the shim of `stateDir` while any live process is left in it,
    /// whether or not the shim itself still runs (the runc it started is in it). Nil when the
    /// group is empty, or when the shim's pid now belongs to another program: the kernel
    /// reuses a pid only once no process group uses it any more, so then the group is gone.
    static func leftoverGroup(stateDir: String) -> Int32? {
        guard let pid = shimPID(stateDir: stateDir) else { return nil }
        if let stat = readSmallFile("/proc/\(pid)/stat"), let fields = statFields(stat), fields[0] != "Z", fields[0] != "X",
           !shimAlive(stateDir: stateDir) {
            return nil
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in names where name.first?.isNumber == true {
            // Fields after the command name: state, parent, process group. A zombie has ended
            // already: it only waits to be reaped.
            if let stat = readSmallFile("/proc/\(name)/stat"), let fields = statFields(stat), fields.count > 2,
               fields[0] != "Z", fields[0] != "X", Int32(fields[2]) == pid {
                return pid
            }
        }
        return nil
    }

    /// The fields of a `/proc/<pid>/stat` line after the command name (which may hold spaces).
    private static func statFields(_ stat: String) -> [Substring]? {
        guard let nameEnd = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
        return fields.isEmpty ? nil : fields
    }

    private static func readPID(_ path: String) -> Int32? {
        guard let text = readSmallFile(path), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            return nil
        }
        return pid
    }

    /// Reads through a handle: /proc files report size 0, so size-based reads would see nothing.
    private static func readSmallFile(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 64 << 10) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
