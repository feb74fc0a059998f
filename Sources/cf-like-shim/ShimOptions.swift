import Glibc

/// The shim's command line, checked.
struct ShimOptions {
    /// The runc executable (absolute path).
    var runc: String
    /// runc's `--root`, when not runc's default.
    var runcRoot: String?
    /// runc's `--systemd-cgroup`.
    var systemdCgroup = false
    /// The container id.
    var id: String
    /// The OCI bundle directory (absolute).
    var bundle: String
    /// Where the shim keeps `log`, `log.1`, `exit`, `pid`, `shim.pid`, `shim.log`, `runc.log` (absolute).
    var stateDir: String
    /// `log` and `log.1` together stay under this many bytes.
    var logMaxBytes = 8 << 20
    /// Sustained rate of app log lines kept, over stdout and stderr together.
    var linesPerSecond = 1000
    /// Lines that may pass at once above the sustained rate.
    var burst = 2000

    static let usage = """
        usage: cf-like-shim --runc PATH [--runc-root DIR] [--systemd-cgroup] --id ID --bundle DIR --state-dir DIR
                            [--log-max-bytes N] [--log-rate LINES_PER_SECOND] [--log-burst LINES]
        Creates and starts container ID with runc, then stays behind as its reaper and log relay.
        Prints `started <pid>` (exit 0) or `failed <reason>` (exit 1) once the container runs or failed.

        """

    /// The smallest log budget: two files of 8 KiB each still hold whole line pieces.
    static let minimumLogMaxBytes = 16 << 10

    /// What was wrong with the command line.
    struct UsageError: Error {
        var message: String
    }

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(UsageError) -> ShimOptions {
        var values: [String: String] = [:]
        let known: Set<String> = ["--runc", "--runc-root", "--id", "--bundle", "--state-dir", "--log-max-bytes", "--log-rate", "--log-burst"]
        var index = 0
        var systemdCgroup = false
        while index < arguments.count {
            let flag = arguments[index]
            if flag == "--systemd-cgroup" {
                systemdCgroup = true
                index += 1
                continue
            }
            guard known.contains(flag) else { throw UsageError(message: "unknown argument \(flag)") }
            guard index + 1 < arguments.count else { throw UsageError(message: "\(flag) needs a value") }
            guard values[flag] == nil else { throw UsageError(message: "\(flag) given twice") }
            values[flag] = arguments[index + 1]
            index += 2
        }
        func required(_ flag: String) throws(UsageError) -> String {
            guard let value = values[flag], !value.isEmpty else { throw UsageError(message: "\(flag) is required") }
            return value
        }
        func positive(_ flag: String, default value: Int, minimum: Int = 1) throws(UsageError) -> Int {
            guard let text = values[flag] else { return value }
            guard let number = Int(text), number >= minimum else {
                throw UsageError(message: "\(flag) must be a whole number >= \(minimum), got \(text)")
            }
            return number
        }

        let runc = try required("--runc")
        guard runc.hasPrefix("/") else { throw UsageError(message: "--runc must be an absolute path, got \(runc)") }
        guard access(runc, X_OK) == 0 else { throw UsageError(message: "--runc \(runc) is not executable: \(Posix.errnoText(errno))") }
        let id = try required("--id")
        guard isValidContainerID(id) else { throw UsageError(message: "invalid container id \(id)") }
        let bundle = absolute(try required("--bundle"))
        let stateDir = absolute(try required("--state-dir"))
        var options = ShimOptions(runc: runc, runcRoot: values["--runc-root"].map(absolute), id: id, bundle: bundle, stateDir: stateDir)
        options.systemdCgroup = systemdCgroup
        options.logMaxBytes = try positive("--log-max-bytes", default: options.logMaxBytes, minimum: minimumLogMaxBytes)
        options.linesPerSecond = try positive("--log-rate", default: options.linesPerSecond)
        options.burst = try positive("--log-burst", default: options.burst)
        return options
    }

    /// runc accepts `[\w+-.]+`; refusing a leading `-` also keeps the id from being read as a flag.
    static func isValidContainerID(_ id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= 1024, !id.hasPrefix("-"), id != ".", id != ".." else { return false }
        return id.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }

    /// The daemon moves to `/` so it never holds a directory busy; relative paths are resolved first.
    private static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (cwd == "/" ? "" : cwd) + "/" + path
    }
}
