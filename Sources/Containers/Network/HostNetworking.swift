#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging

/// The host side of ``ContainerNetwork``: runs `ip` and `nft` by argument vector (scripts go
/// through a private temporary file, never a shell), reads sysfs and procfs.
struct HostNetworking: Sendable {
    /// Where `ip netns` keeps its namespace names.
    static let namespaceDirectory = "/var/run/netns"
    static let interfaceDirectory = "/sys/class/net"
    static let forwardingSysctl = "/proc/sys/net/ipv4/ip_forward"

    let ip: String
    let nft: String
    let timeout: Duration
    let logger: Logger

    init(timeout: Duration = .seconds(15), logger: Logger) throws {
        // A root daemon does not search PATH for the tools it runs as root.
        ip = try Self.locate("ip")
        nft = try Self.locate("nft")
        self.timeout = timeout
        self.logger = logger
    }

    static func locate(_ tool: String) throws -> String {
        let dirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for dir in dirs where FileManager.default.isExecutableFile(atPath: dir + "/" + tool) {
            return dir + "/" + tool
        }
        throw ContainerError(.launchFailed, "\(tool) not found in \(dirs.joined(separator: ", ")); install iproute2 and nftables")
    }

    // MARK: Commands

    /// Runs `ip -batch` over `commands` (one `ip` command per line, without the leading `ip`),
    /// inside `namespace` when given. `ip` stops at the first failing line and names it.
    func ipBatch(_ commands: [String], namespace: String? = nil, purpose: String) async throws {
        guard !commands.isEmpty else { return }
        let script = commands.joined(separator: "\n") + "\n"
        try await withScriptFile(script) { path in
            var args: [String] = []
            if let namespace { args += ["-n", namespace] }
            args += ["-batch", path]
            try await run(ip, args, purpose: purpose, script: script)
        }
    }

    /// Runs an nftables script as one transaction: all of it applies or none does.
    func nftScript(_ script: String, purpose: String) async throws {
        guard !script.isEmpty else { return }
        try await withScriptFile(script) { path in
            try await run(nft, ["-f", path], purpose: purpose, script: script)
        }
    }

    /// `ip -j` output decoded, for listings.
    func ipJSON<T: Decodable>(_ type: T.Type, _ arguments: [String], purpose: String) async throws -> T {
        let result = try await run(ip, ["-j"] + arguments, purpose: purpose, script: nil)
        do {
            return try JSONDecoder().decode(T.self, from: result.stdout)
        } catch {
            throw ContainerError(.decoding, "cannot read the output of ip -j \(arguments.joined(separator: " ")) (\(purpose))", cause: error)
        }
    }

    @discardableResult
    private func run(_ executable: String, _ arguments: [String], purpose: String, script: String?) async throws -> CommandResult {
        logger.trace("network command", metadata: ["command": "\(executable) \(arguments.joined(separator: " "))"])
        let result: CommandResult
        do {
            result = try await CommandRunner.run(executable, arguments, timeout: timeout)
        } catch var error as ContainerError {
            error.message = "\(purpose): \(error.message)"
            throw error
        }
        guard result.status == 0 else {
            var tail = CommandRunner.tailText(result.stderr)
            if tail.isEmpty { tail = CommandRunner.tailText(result.stdout) }
            let shown = script.map { "; script:\n\($0)" } ?? ""
            throw ContainerError(
                .commandFailed, "\(purpose): \(URL(fileURLWithPath: executable).lastPathComponent) failed\(shown)",
                exitStatus: result.status, stderrTail: tail)
        }
        return result
    }

    /// Writes `text` to a new private file (mode 0600, created exclusively), passes its path
    /// to `body` and removes it afterwards.
    private func withScriptFile<T>(_ text: String, _ body: (String) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.path
        var template = Array("\(directory)/cf-like-net-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer in
            // A non-empty NUL-terminated array always has a base address.
            mkstemp(buffer.baseAddress!)
        }
        guard fd >= 0 else { throw ContainerError.systemCall("mkstemp", directory, errno: errno) }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { unlink(path) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        } catch {
            throw ContainerError(.io, "cannot write the script file \(path)", cause: error)
        }
        return try await body(path)
    }

    // MARK: Host state

    /// Names of the host's network interfaces.
    func interfaceNames() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: Self.interfaceDirectory)) ?? []
    }

    /// Names under `/var/run/netns` (none when the directory does not exist yet).
    func namespaceNames() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: Self.namespaceDirectory)) ?? []
    }

    func interfaceExists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: Self.interfaceDirectory + "/" + name)
    }

    func namespaceExists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: Self.namespaceDirectory + "/" + name)
    }

    /// One link of `ip -j -d link show`.
    struct Link: Decodable {
        var ifname: String
        var linkinfo: LinkInfo?
        struct LinkInfo: Decodable {
            var info_kind: String?
        }
        var kind: String? { linkinfo?.info_kind }
    }

    /// The host's links with their kinds.
    func links() async throws -> [Link] {
        try await ipJSON([Link].self, ["-d", "link", "show"], purpose: "listing the host's interfaces")
    }

    /// One route of `ip -j -4 route show table all`.
    struct Route: Decodable {
        var dst: String
        var dev: String?
        var type: String?
        var table: String?
    }

    /// Every IPv4 route of every routing table.
    func routes() async throws -> [Route] {
        try await ipJSON([Route].self, ["-4", "route", "show", "table", "all"], purpose: "listing the host's routes")
    }

    /// IPv4 name servers of a resolv.conf.
    static func nameservers(resolvConf text: String) -> [IPv4Address] {
        text.split(separator: "\n").compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            return IPv4Address(words[1])
        }
    }

    /// Sets `net.ipv4.ip_forward` to 1 and says whether it had to (it was 0).
    func enableForwarding() throws -> Bool {
        let current = (try? String(contentsOfFile: Self.forwardingSysctl, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if current == "1" { return false }
        try writeSysctl(Self.forwardingSysctl, "1")
        return true
    }

    /// Turns IPv6 off on a host-side veth: the container gets nothing from IPv6 there, and an
    /// interface without addresses offers nothing to talk to. Best effort (IPv6 may be absent).
    func disableIPv6(on interface: String) {
        let path = "/proc/sys/net/ipv6/conf/\(interface)/disable_ipv6"
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            try writeSysctl(path, "1")
        } catch {
            logger.debug("cannot disable IPv6 on a container veth", metadata: ["network.interface": "\(interface)", "error": "\(error)"])
        }
    }

    private func writeSysctl(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ContainerError.systemCall("open", path, errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw ContainerError.systemCall("write", path, errno: errno) }
    }
}
