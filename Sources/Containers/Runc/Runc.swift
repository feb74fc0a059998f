import Foundation
import Logging

/// Drives the `runc` binary: global flags here, one method per subcommand.
///
/// Every call runs runc by argument vector with a time limit; a non-zero exit becomes a
/// ``ContainerError`` of kind `.commandFailed` carrying the exit status and the tail of
/// runc's standard error. The container's own stdout and stderr go to files chosen by the
/// caller, so an agent that restarts can keep following them; its stdin is `/dev/null`.
public struct Runc: Sendable {
    /// The runc executable.
    public var executable: String
    /// `--root`: runc's state directory. Use one per agent so containers of others stay invisible.
    public var root: String?
    /// `--log`: where runc writes its own log.
    public var log: String?
    /// `--log-format`: `text` or `json`.
    public var logFormat: String?
    /// `--systemd-cgroup`: let systemd create the cgroups.
    public var systemdCgroup: Bool
    /// Time limit for quick subcommands (state, kill, delete, list, start).
    public var commandTimeout: Duration
    /// Time limit for create and run -d (namespaces, mounts and cgroups are set up by then).
    public var createTimeout: Duration
    /// Where runc's invocations are logged at debug level.
    public var logger: Logger

    /// A driver; `executable` defaults to ``locate()``.
    public init(
        executable: String? = nil,
        root: String? = nil,
        log: String? = nil,
        logFormat: String? = nil,
        systemdCgroup: Bool = false,
        commandTimeout: Duration = .seconds(30),
        createTimeout: Duration = .seconds(60),
        logger: Logger
    ) throws {
        guard let found = executable ?? Self.locate() else {
            throw ContainerError(.launchFailed, "runc not found on PATH, /usr/sbin/runc or /usr/bin/runc")
        }
        self.executable = found
        self.root = root
        self.log = log
        self.logFormat = logFormat
        self.systemdCgroup = systemdCgroup
        self.commandTimeout = commandTimeout
        self.createTimeout = createTimeout
        self.logger = logger
    }

    /// The runc on `PATH`, else `/usr/sbin/runc` or `/usr/bin/runc`; nil if none is executable.
    public static func locate(path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        let dirs = (path ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin"]
        for dir in dirs where dir.hasPrefix("/") {
            let candidate = dir + "/runc"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    // MARK: Subcommands

    /// `runc create`: sets the container up and leaves its process waiting for ``start(id:)``.
    public func create(id: String, bundle: String, pidFile: String? = nil, stdio: ContainerStdio) async throws {
        try Self.validate(id: id)
        var args = ["create", "--bundle", bundle]
        if let pidFile { args += ["--pid-file", pidFile] }
        try await launch(args + [id], stdio: stdio)
    }

    /// `runc start`: runs the process of a created container.
    public func start(id: String) async throws {
        try Self.validate(id: id)
        _ = try await runc(["start", id])
    }

    /// `runc run -d`: create and start in one step; returns once the process runs.
    public func runDetached(id: String, bundle: String, pidFile: String? = nil, stdio: ContainerStdio) async throws {
        try Self.validate(id: id)
        var args = ["run", "--detach", "--bundle", bundle]
        if let pidFile { args += ["--pid-file", pidFile] }
        try await launch(args + [id], stdio: stdio)
    }

    /// `runc run` in the foreground: waits for the process, removes the container, and returns
    /// the process's exit status (128 + signal if it was killed). Not an error when non-zero.
    public func runToCompletion(id: String, bundle: String, stdio: ContainerStdio, timeout: Duration) async throws -> Int32 {
        try Self.validate(id: id)
        let result = try await CommandRunner.run(
            executable, globalFlags() + ["run", "--bundle", bundle, id],
            stdin: .null, stdout: .file(stdio.stdout), stderr: .file(stdio.stderr), timeout: timeout)
        return result.status
    }

    /// `runc state`: the container's status, init pid and bundle.
    public func state(id: String) async throws -> ContainerState {
        try Self.validate(id: id)
        let result = try await runc(["state", id])
        return try decode(ContainerState.self, from: result.stdout, what: "runc state \(id)")
    }

    /// `runc kill`: sends `signal` to the init process, or to every process with `all`.
    public func kill(id: String, signal: Int32 = 15, all: Bool = false) async throws {
        try Self.validate(id: id)
        _ = try await runc(["kill"] + (all ? ["--all"] : []) + [id, String(signal)])
    }

    /// `runc delete`: removes a stopped container (any container with `force`, killing it).
    /// Its cgroups go with it; the bundle and root filesystem stay.
    public func delete(id: String, force: Bool = false) async throws {
        try Self.validate(id: id)
        _ = try await runc(["delete"] + (force ? ["--force"] : []) + [id])
    }

    /// `runc list`: every container under ``root``.
    public func list() async throws -> [ContainerState] {
        let result = try await runc(["list", "--format", "json"])
        // runc prints `null`, not `[]`, when there are none.
        return try decode([ContainerState]?.self, from: result.stdout, what: "runc list") ?? []
    }

    /// `runc exec` of `args` as the container's own user, capturing output, with a time limit.
    /// A non-zero exit of the program is returned, not thrown; runc's own failures are thrown.
    public func exec(
        id: String,
        args: [String],
        env: [String] = [],
        cwd: String? = nil,
        user: User? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> ExecResult {
        try Self.validate(id: id)
        var flags = ["exec"]
        for entry in env { flags += ["--env", entry] }
        if let cwd { flags += ["--cwd", cwd] }
        if let user { flags += ["--user", "\(user.uid):\(user.gid)"] }
        return try await execute(flags + [id] + args, timeout: timeout)
    }

    /// `runc exec --process`: runs a fully described process (capabilities, rlimits and all).
    public func exec(id: String, process: Process, timeout: Duration = .seconds(30)) async throws -> ExecResult {
        try Self.validate(id: id)
        let file = FileManager.default.temporaryDirectory.path + "/cf-like-process-\(UUID().uuidString).json"
        let data: Data
        do {
            data = try JSONEncoder().encode(process)
            try data.write(to: URL(fileURLWithPath: file), options: [.atomic])
        } catch {
            throw ContainerError(.io, "cannot write process file \(file)", cause: error)
        }
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try await execute(["exec", "--process", file, id], timeout: timeout)
    }

    // MARK: Plumbing

    /// runc accepts `[\w+-.]+`; checking here also keeps an id from being read as a flag.
    public static func validate(id: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
        guard !id.isEmpty, id.count <= 1024, id.allSatisfy(allowed.contains), !id.hasPrefix("-"), id != ".", id != ".." else {
            throw ContainerError(.invalidArgument, "invalid container id \(id.debugDescription)")
        }
    }

    func globalFlags() -> [String] {
        var flags: [String] = []
        if let root { flags += ["--root", root] }
        if let log { flags += ["--log", log] }
        if let logFormat { flags += ["--log-format", logFormat] }
        if systemdCgroup { flags.append("--systemd-cgroup") }
        return flags
    }

    /// Runs a quick subcommand, throwing on a non-zero exit.
    private func runc(_ args: [String]) async throws -> CommandResult {
        let all = globalFlags() + args
        logger.debug("runc", metadata: ["runc.args": "\(args)"])
        let result = try await CommandRunner.run(executable, all, timeout: commandTimeout)
        guard result.status == 0 else {
            throw ContainerError(
                .commandFailed, "runc \(args.first ?? "") failed", exitStatus: result.status,
                stderrTail: CommandRunner.tailText(result.stderr))
        }
        return result
    }

    /// create / run -d: the container inherits runc's stdio, so runc gets the caller's files
    /// and its own complaints land in the stderr file; on failure, the new part of that file
    /// (or runc's log) becomes the error's tail.
    private func launch(_ args: [String], stdio: ContainerStdio) async throws {
        logger.debug("runc", metadata: ["runc.args": "\(args)"])
        let before = Self.fileSize(stdio.stderr)
        let logBefore = log.map(Self.fileSize) ?? 0
        let result = try await CommandRunner.run(
            executable, globalFlags() + args,
            stdin: .null, stdout: .file(stdio.stdout), stderr: .file(stdio.stderr), timeout: createTimeout)
        guard result.status == 0 else {
            var tail = Self.readTail(stdio.stderr, from: before)
            if tail.isEmpty, let log { tail = Self.readTail(log, from: logBefore) }
            throw ContainerError(.commandFailed, "runc \(args.first ?? "") failed", exitStatus: result.status, stderrTail: tail)
        }
    }

    private func execute(_ args: [String], timeout: Duration) async throws -> ExecResult {
        logger.debug("runc", metadata: ["runc.args": "\(args)"])
        let result = try await CommandRunner.run(executable, globalFlags() + args, timeout: timeout)
        return ExecResult(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    private func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ContainerError(.decoding, "cannot decode output of \(what): \(CommandRunner.tailText(data))", cause: error)
        }
    }

    static func fileSize(_ path: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    static func readTail(_ path: String, from offset: UInt64) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = fileSize(path)
        let start = max(offset, size > UInt64(CommandRunner.stderrTailBytes) ? size - UInt64(CommandRunner.stderrTailBytes) : 0)
        guard (try? handle.seek(toOffset: start)) != nil, let data = try? handle.readToEnd() else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}
