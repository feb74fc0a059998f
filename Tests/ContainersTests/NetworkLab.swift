import Foundation
import Logging
import Testing

@testable import Containers

/// One network test's private world: its own nftables table, interface prefix, subnet, port
/// range, a bridge carrying the "host address" (this kernel has no dummy interfaces; a bridge
/// without ports is as inert), an optional "outside" namespace routed through the host, and
/// the servers it starts. Nothing here touches a running agent's table or names, or another
/// test's; ``cleanup()`` removes all of it.
final class NetworkLab: @unchecked Sendable {
    /// How a probe connection ended.
    enum Probe: Equatable, CustomStringConvertible {
        /// Connected and read the server's greeting, `NAME PEER-ADDRESS`.
        case answered(String)
        case refused
        case timedOut
        case failed(String)

        var isBlocked: Bool { self == .refused || self == .timedOut }
        /// The server's name when it answered.
        var server: String? {
            guard case .answered(let text) = self else { return nil }
            return text.split(separator: " ").first.map(String.init)
        }
        /// The peer address the server saw.
        var peer: String? {
            guard case .answered(let text) = self else { return nil }
            let words = text.split(separator: " ")
            return words.count > 1 ? String(words[1]) : nil
        }
        var description: String {
            switch self {
            case .answered(let text): "answered \"\(text)\""
            case .refused: "refused"
            case .timedOut: "timed out"
            case .failed(let why): "failed: \(why)"
            }
        }
    }

    static let python = "/usr/bin/python3"
    static let ip = "/usr/sbin/ip"
    static let nft = "/usr/sbin/nft"

    /// Accepts connections forever and greets each with `NAME PEER-ADDRESS`; prints its port first.
    static let serverScript = #"""
        import socket, sys
        name, bind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((bind, port))
        s.listen(64)
        print(s.getsockname()[1], flush=True)
        while True:
            c, a = s.accept()
            try:
                c.sendall(("%s %s\n" % (name, a[0])).encode())
            except OSError:
                pass
            finally:
                c.close()
        """#

    /// Connects once and prints `ok GREETING`, `refused`, `timeout` or `error WHY`.
    static let clientScript = #"""
        import socket, sys
        host, port, t = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        try:
            c = socket.create_connection((host, port), timeout=t)
            data = b""
            while not data.endswith(b"\n"):
                chunk = c.recv(200)
                if not chunk:
                    break
                data += chunk
            print("ok " + data.decode().strip())
        except ConnectionRefusedError:
            print("refused")
        except (socket.timeout, TimeoutError):
            print("timeout")
        except OSError as e:
            print("error " + str(e))
        """#

    let table: String
    let prefix: String
    /// A /24 that overlaps nothing on the host.
    let subnet: IPv4Network
    let portBase: Int
    let logger: Logger

    /// The bridge with the "host address".
    let hostDevice: String
    let hostAddress: String

    /// The "outside": a namespace behind a veth, routed through the host.
    let outsideNamespace: String
    let outsideHostDevice: String
    let outsideHostAddress: String
    let outsideAddress: String
    private(set) var outsideCreated = false

    private var servers: [Foundation.Process] = []
    private var extraNamespaces: [String] = []
    private var extraLinks: [String] = []
    private var networks: [ContainerNetwork] = []

    /// Fails (not skips) the test without root, ip, nft or python3.
    static func requireTools() throws {
        try #require(getuid() == 0, "network tests need root")
        for tool in [python, ip, nft] {
            try #require(FileManager.default.isExecutableFile(atPath: tool), "network tests need \(tool)")
        }
    }

    /// Runs `body` with a fresh lab and removes everything afterwards, whatever happens.
    static func with<T>(_ body: (NetworkLab) async throws -> T) async throws -> T {
        try requireTools()
        let lab = try await NetworkLab()
        do {
            let result = try await body(lab)
            try await lab.cleanup()
            return result
        } catch {
            try? await lab.cleanup()
            throw error
        }
    }

    private init() async throws {
        let hex = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let tag = String(repeating: "0", count: 8 - hex.count) + hex
        table = "cflike_t\(tag)"
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        prefix = "clt" + String((0..<2).map { _ in letters.randomElement() ?? "q" })
        var logger = Logger(label: "cf-like.network-test")
        logger.logLevel = ProcessInfo.processInfo.environment["NETWORK_TEST_LOG"] != nil ? .trace : .warning
        self.logger = logger
        // Below the suites' ports (20000 up) and the kernel's ephemeral range (32768 up): a
        // server another test binds to port 0 must never sit on a host port a lab forwards.
        portBase = 10000 + Int.random(in: 0..<200) * 50

        let routes = try await Self.hostRoutes()
        func free(_ network: IPv4Network) -> Bool { !routes.contains { $0.overlaps(network) } }
        func pick(_ make: () -> IPv4Network) throws -> IPv4Network {
            for _ in 0..<50 {
                let candidate = make()
                if free(candidate) { return candidate }
            }
            throw ContainerError("no free test network found among the host's routes")
        }
        subnet = try pick {
            IPv4Network(address: IPv4Address(10 << 24 | UInt32.random(in: 200...239) << 16 | UInt32.random(in: 0...255) << 8), prefixLength: 24)
        }
        let hostNet = try pick {
            IPv4Network(address: IPv4Address(10 << 24 | 253 << 16 | UInt32.random(in: 0...255) << 8 | 1), prefixLength: 32)
        }
        hostAddress = hostNet.address.description
        let outsideNet = try pick {
            IPv4Network(address: IPv4Address(10 << 24 | 251 << 16 | UInt32.random(in: 0...255) << 8 | UInt32.random(in: 0...63) * 4), prefixLength: 30)
        }
        outsideHostAddress = IPv4Address(outsideNet.address.value + 1).description
        outsideAddress = IPv4Address(outsideNet.address.value + 2).description
        let short = String(tag.prefix(4))
        hostDevice = "cfltest\(short)"
        outsideNamespace = "cflo\(short)x"
        outsideHostDevice = "cflo\(short)h"

        try await Self.run(Self.ip, ["link", "add", hostDevice, "type", "bridge"])
        extraLinks.append(hostDevice)
        try await Self.run(Self.ip, ["address", "add", "\(hostAddress)/32", "dev", hostDevice])
        try await Self.run(Self.ip, ["link", "set", "dev", hostDevice, "up"])
    }

    // MARK: Networks

    func config(
        allowOutbound: Bool = true, subnet: IPv4Network? = nil, ports: ClosedRange<Int>? = nil
    ) -> ContainerNetworkConfig {
        ContainerNetworkConfig(
            subnet: (subnet ?? self.subnet).description,
            hostPortRange: ports ?? portBase...(portBase + 49),
            allowOutbound: allowOutbound,
            tableName: table,
            interfacePrefix: prefix
        )
    }

    /// A network whose leftovers ``cleanup()`` tears down.
    func network(_ config: ContainerNetworkConfig) throws -> ContainerNetwork {
        let network = try ContainerNetwork(config: config, logger: logger)
        networks.append(network)
        return network
    }

    // MARK: The outside

    /// Creates the "outside" namespace: `outsideAddress` behind a veth whose host end has
    /// `outsideHostAddress`, with a route back to the container subnet through the host.
    func createOutside() async throws {
        try await Self.run(Self.ip, ["netns", "add", outsideNamespace])
        extraNamespaces.append(outsideNamespace)
        outsideCreated = true
        try await Self.run(Self.ip, ["link", "add", outsideHostDevice, "type", "veth", "peer", "name", "eth0", "netns", outsideNamespace])
        extraLinks.append(outsideHostDevice)
        try await Self.run(Self.ip, ["address", "add", "\(outsideHostAddress)/30", "dev", outsideHostDevice])
        try await Self.run(Self.ip, ["link", "set", "dev", outsideHostDevice, "up"])
        for args in [
            ["address", "add", "\(outsideAddress)/30", "dev", "eth0"], ["link", "set", "dev", "eth0", "up"],
            ["link", "set", "dev", "lo", "up"], ["route", "add", subnet.description, "via", outsideHostAddress],
        ] {
            try await Self.run(Self.ip, ["-n", outsideNamespace] + args)
        }
    }

    /// Creates a namespace the test removes itself (or expects the network to remove).
    func addNamespace(_ name: String) async throws {
        extraNamespaces.append(name)
        try await Self.run(Self.ip, ["netns", "add", name])
    }

    /// Runs `ip ARGS` and records `link` for cleanup.
    func addLink(_ link: String, _ arguments: [String]) async throws {
        extraLinks.append(link)
        try await Self.run(Self.ip, arguments)
    }

    // MARK: Traffic

    /// Starts a greeting server named `name` in `namespace` (nil: the host) and returns its port.
    func startServer(_ name: String, in namespace: String?, bind: String = "0.0.0.0", port: Int = 0) throws -> Int {
        let process = Foundation.Process()
        if let namespace {
            process.executableURL = URL(fileURLWithPath: Self.ip)
            process.arguments = ["netns", "exec", namespace, Self.python, "-c", Self.serverScript, name, bind, String(port)]
        } else {
            process.executableURL = URL(fileURLWithPath: Self.python)
            process.arguments = ["-c", Self.serverScript, name, bind, String(port)]
        }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        servers.append(process)
        // The server prints its port once it listens; EOF means it failed.
        var text = ""
        while !text.contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let bound = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ContainerError("server \(name) in \(namespace ?? "the host") did not start (printed \"\(text)\")")
        }
        return bound
    }

    /// Connects from `namespace` (nil: the host) to `address:port` and reports how it ended.
    func probe(from namespace: String?, _ address: String, _ port: Int, timeout: Double = 1.5) async throws -> Probe {
        let args = ["-c", Self.clientScript, address, String(port), String(timeout)]
        let result: CommandResult
        if let namespace {
            result = try await CommandRunner.run(Self.ip, ["netns", "exec", namespace, Self.python] + args, timeout: .seconds(timeout + 10))
        } else {
            result = try await CommandRunner.run(Self.python, args, timeout: .seconds(timeout + 10))
        }
        let text = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("ok ") { return .answered(String(text.dropFirst(3))) }
        if text == "refused" { return .refused }
        if text == "timeout" { return .timedOut }
        return .failed(text + String(decoding: result.stderr, as: UTF8.self))
    }

    // MARK: Host state

    /// Links named like this lab's containers (prefix + digits).
    func ourLinks() async throws -> [String] {
        struct Link: Decodable { var ifname: String }
        let data = try await Self.run(Self.ip, ["-j", "link", "show"])
        return try JSONDecoder().decode([Link].self, from: data).map(\.ifname).filter(isOurs)
    }

    /// Namespaces named like this lab's containers.
    func ourNamespaces() async throws -> [String] {
        try await Self.namespaces().filter(isOurs)
    }

    static func namespaces() async throws -> [String] {
        struct Namespace: Decodable { var name: String }
        let data = try await run(ip, ["-j", "netns", "list"])
        let trimmed = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        return try JSONDecoder().decode([Namespace].self, from: data).map(\.name)
    }

    func isOurs(_ name: String) -> Bool {
        guard name.hasPrefix(prefix) else { return false }
        let rest = name.dropFirst(prefix.count)
        return !rest.isEmpty && rest.allSatisfy(\.isNumber)
    }

    /// Names of the host's nftables tables.
    static func nftTables() async throws -> [String] {
        let data = try await run(nft, ["-j", "list", "tables"])
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let items = object?["nftables"] as? [[String: Any]] ?? []
        return items.compactMap { ($0["table"] as? [String: Any])?["name"] as? String }
    }

    /// The elements of the lab table's `ifaces` set.
    func interfaceElements() async throws -> [String] {
        try await elements(kind: "set", name: NetworkRuleset.interfaceSet).compactMap { $0 as? String }.sorted()
    }

    /// The keys of the lab table's `hostports` map.
    func portElements() async throws -> [Int] {
        try await elements(kind: "map", name: NetworkRuleset.portMap).compactMap { ($0 as? [Any])?.first as? Int }.sorted()
    }

    private func elements(kind: String, name: String) async throws -> [Any] {
        let data = try await Self.run(Self.nft, ["-j", "list", kind, "inet", table, name])
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let items = object?["nftables"] as? [[String: Any]] ?? []
        for item in items {
            if let body = item[kind] as? [String: Any] { return body["elem"] as? [Any] ?? [] }
        }
        return []
    }

    /// The host's IPv4 routes of every table, as networks.
    static func hostRoutes() async throws -> [IPv4Network] {
        struct Route: Decodable { var dst: String }
        let data = try await run(ip, ["-j", "-4", "route", "show", "table", "all"])
        return try JSONDecoder().decode([Route].self, from: data).compactMap { route in
            route.dst == "default" ? nil : IPv4Network(route.dst, strict: false)
        }
    }

    /// Runs a program and returns its standard output; throws when it fails.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) async throws -> Data {
        let result = try await CommandRunner.run(executable, arguments, timeout: .seconds(20))
        guard result.status == 0 else {
            throw ContainerError(
                .commandFailed, "\(executable) \(arguments.joined(separator: " ")) failed",
                exitStatus: result.status, stderrTail: CommandRunner.tailText(result.stderr))
        }
        return result.stdout
    }

    // MARK: Cleanup

    /// Stops the servers, tears down every network, removes the lab's namespaces, links and
    /// table, and fails when anything of the lab is still there.
    func cleanup() async throws {
        // SIGKILL, not terminate(): children started from a Dispatch thread inherit its
        // signal mask, in which SIGTERM is blocked.
        for server in servers where server.isRunning {
            kill(server.processIdentifier, SIGKILL)
        }
        for server in servers {
            server.waitUntilExit()
        }
        servers = []
        var failures: [String] = []
        for network in networks {
            do { try await network.teardown() } catch { failures.append("teardown: \(error)") }
        }
        for link in extraLinks where FileManager.default.fileExists(atPath: "/sys/class/net/\(link)") {
            do { try await Self.run(Self.ip, ["link", "delete", "dev", link]) } catch { failures.append("\(error)") }
        }
        let present = try await Self.namespaces()
        for namespace in extraNamespaces where present.contains(namespace) {
            do { try await Self.run(Self.ip, ["netns", "delete", namespace]) } catch { failures.append("\(error)") }
        }
        if try await Self.nftTables().contains(table) {
            try await Self.run(Self.nft, ["delete", "table", "inet", table])
            failures.append("table \(table) was still there")
        }
        let links = try await ourLinks()
        let namespaces = try await ourNamespaces()
        if !links.isEmpty || !namespaces.isEmpty {
            failures.append("left behind: links \(links), namespaces \(namespaces)")
        }
        if !failures.isEmpty {
            throw ContainerError("network lab cleanup: " + failures.joined(separator: "; "))
        }
    }
}
