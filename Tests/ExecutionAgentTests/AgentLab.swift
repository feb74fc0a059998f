import Containers
import Foundation
import Logging
import NIOPosix
import PlatformModels
import Synchronization
import Testing

@testable import ExecutionAgent

/// One agent integration test's private world: its own state directory, subnet, host ports,
/// nftables table and interface prefix, so labs never touch each other or a running agent.
final class AgentLab: Sendable {
    let base: String
    let agent: ExecutionAgent
    let droplet: DropletRef
    let loops: Task<Void, Never>
    let logs = LogCollector()
    let config: AgentConfig

    static let threadPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    static func requireRootRuncAndShim() throws {
        try #require(getuid() == 0, "agent integration tests need root")
        try #require(Runc.locate() != nil, "agent integration tests need runc")
        try #require(ContainerShim.locate() != nil, "agent integration tests need cf-like-shim beside the test binary (swift build --build-tests)")
    }

    /// Runs `body` with a fresh lab; stops every instance and removes everything afterwards.
    /// `extraConfig`: `key: value` lines under `dea:`, replacing the lab's defaults of those keys.
    static func with<T>(_ name: String, slot: Int, extraConfig: String = "", _ body: (AgentLab) async throws -> T) async throws -> T {
        try requireRootRuncAndShim()
        let lab = try await AgentLab(name: name, slot: slot, extraConfig: extraConfig)
        do {
            let result = try await body(lab)
            await lab.shutdown()
            return result
        } catch {
            await lab.shutdown()
            throw error
        }
    }

    /// A second agent on the same state (an agent restart).
    func restartedAgent() throws -> ExecutionAgent {
        var logger = Logger(label: "cf-like.agent-test")
        logger.logLevel = .warning
        return try ExecutionAgent(config: config, client: nil, threadPool: Self.threadPool, logger: logger)
    }

    private init(name: String, slot: Int, extraConfig: String) async throws {
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        base = "/tmp/cf-like-agent-test/\(name)-\(suffix)"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try Data("test-internal-credential-0123456789".utf8).write(to: URL(fileURLWithPath: base + "/credential"))
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let prefix = "cx" + String(letters[slot % 26])
        let defaults = [
            ("agent_id", "test-\(name)-\(suffix)"), ("state_dir", "\(base)/state"), ("subnet", "10.252.\(slot * 4).0/22"),
            ("host_port_min", "\(40000 + slot * 100)"), ("host_port_max", "\(40000 + slot * 100 + 99)"),
            ("nftables_table", "cflt_\(name.replacingOccurrences(of: "-", with: "_"))_\(suffix)"), ("interface_prefix", prefix),
            ("memory_mb", "4096"), ("pids_limit", "128"), ("start_check_interval_ms", "100"),
            ("liveness_interval_seconds", "1"), ("stop_grace_seconds", "3"),
            // No network pool unless a test asks for one: leftover checks count every namespace
            // and interface of the lab's prefix.
            ("network_pool_size", "0"),
        ]
        // `extraConfig` is `key: value` lines under `dea:`; a key in it replaces the lab's default
        // (YAML refuses a key given twice).
        let extra = extraConfig.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let overridden = Set(extra.compactMap { $0.split(separator: ":").first.map { $0.trimmingCharacters(in: .whitespaces) } })
        let deaLines = defaults.filter { !overridden.contains($0.0) }.map { "  \($0.0): \($0.1)" } + extra.map { "  " + $0 }
        let yaml = "controller:\n  internal_credential_file: \(base)/credential\ndea:\n" + deaLines.joined(separator: "\n") + "\n"
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: base + "/config.yaml"))
        config = try AgentConfig(document: ConfigDocument(path: base + "/config.yaml"))
        var logger = Logger(label: "cf-like.agent-test")
        logger.logLevel = .warning
        agent = try ExecutionAgent(config: config, client: nil, threadPool: Self.threadPool, logger: logger)
        droplet = try await Self.buildDroplet(in: base, agent: agent)
        try await agent.prepare()
        let agent = self.agent
        let logs = self.logs
        agent.observeLogs { lines in logs.append(lines) }
        loops = Task { await agent.runLoops() }
    }

    /// Where the agent keeps the instance's record, layers and log.
    func instanceDirectory(_ guid: String) -> String { config.stateDirectory + "/instances/" + guid }

    /// The instance's cgroup in every hierarchy.
    func cgroupPath(_ guid: String) -> String { "/cflike/\(config.agentID)/\(guid)" }

    func shutdown() async {
        await agent.stopAll()
        loops.cancel()
        _ = await loops.value
        try? await agent.teardownNetwork()
        try? FileManager.default.removeItem(atPath: base)
    }

    /// The test app: a python stdlib server on $PORT with a few endpoints the tests drive.
    static let serverPy = #"""
    import ctypes, json, os, socket, subprocess, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import urlparse, parse_qs

    libc = ctypes.CDLL(None, use_errno=True)
    print("app starting on port " + os.environ.get("PORT", "?"), flush=True)
    print("to stderr", file=sys.stderr, flush=True)

    def status_fields():
        out = {}
        for line in open("/proc/self/status"):
            k, _, v = line.partition(":")
            if k in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
                out[k] = v.strip()
        return out

    def try_connect(target):
        host, port = target.rsplit(":", 1)
        s = socket.socket()
        s.settimeout(1.0)
        try:
            s.connect((host, int(port)))
            return "connected"
        except socket.timeout:
            return "timeout"
        except OSError as e:
            return "error:%d" % e.errno
        finally:
            s.close()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def send(self, code, body):
            data = json.dumps(body).encode() if not isinstance(body, bytes) else body
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        def do_GET(self):
            u = urlparse(self.path); q = parse_qs(u.query)
            if u.path == "/env":
                return self.send(200, dict(os.environ))
            if u.path == "/probe":
                r = {"uid": os.getuid(), "status": status_fields(), "cwd": os.getcwd()}
                rc = libc.mount(b"proc", b"/tmp", b"proc", 0, None)
                r["mount"] = "ok" if rc == 0 else "errno:%d" % ctypes.get_errno()
                rc = libc.unshare(0x00020000)
                r["unshare"] = "ok" if rc == 0 else "errno:%d" % ctypes.get_errno()
                try:
                    os.mknod("/home/vcap/tmp/sda", 0o600 | 0o060000, os.makedev(8, 0))
                    r["mknod"] = "ok"
                except OSError as e:
                    r["mknod"] = "errno:%d" % e.errno
                r["pids"] = len([p for p in os.listdir("/proc") if p.isdigit()])
                r["host_proc_1_environ"] = os.path.exists("/proc/1/environ") and open("/proc/1/cmdline","rb").read().split(b"\0")[0].decode()
                r["connect"] = {t: try_connect(t) for t in q.get("t", [])}
                return self.send(200, r)
            if u.path == "/fail":
                return self.send(500, {"ok": False})
            if u.path == "/crash":
                self.send(200, {"bye": True})
                os._exit(3)
            if u.path == "/oom":
                self.send(200, {"allocating": True})
                self.wfile.flush()
                hog = []
                while True:
                    hog.append(bytearray(16 << 20))
            if u.path == "/forkbomb":
                subprocess.Popen(["/bin/bash", "-c", "f(){ f | f & }; f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                return self.send(200, {"started": True})
            if u.path == "/log":
                for i in range(int(q.get("n", ["1"])[0])):
                    print("line %d" % i, flush=True)
                return self.send(200, {"logged": True})
            return self.send(200, {"ok": True})

    HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
    """#

    static func buildDroplet(in base: String, agent: ExecutionAgent) async throws -> DropletRef {
        let root = base + "/droplet-src"
        try FileManager.default.createDirectory(atPath: root + "/app", withIntermediateDirectories: true)
        try Data(serverPy.utf8).write(to: URL(fileURLWithPath: root + "/app/server.py"))
        try Data(#"{"detected_buildpack":"test","start_command":"exec python3 server.py"}"#.utf8)
            .write(to: URL(fileURLWithPath: root + "/staging_info.yml"))
        let archive = base + "/droplet.tgz"
        try run("/bin/tar", ["-czf", archive, "-C", root, "."])
        let sha = try DropletCache.sha256(ofFile: archive)
        try await agent.installDroplet(archive: archive, sha256: sha)
        return DropletRef(guid: UUID().uuidString.lowercased(), sha256: sha, downloadPath: "/internal/v1/droplets/x/download")
    }

    /// An assignment of the test app.
    func assignment(index: Int = 0, memoryMB: Int = 128, command: String = "",
                    health: HealthCheckSpec = HealthCheckSpec(type: .port, timeoutSeconds: 20),
                    env: [String: String] = [:]) -> InstanceAssignment {
        let app = UUID().uuidString.lowercased()
        return InstanceAssignment(
            instanceGUID: UUID().uuidString.lowercased(), appGUID: app, appName: "lab-app", processGUID: app, processType: "web",
            processVersion: UUID().uuidString.lowercased(), index: index, droplet: droplet, command: command, memoryMB: memoryMB,
            diskMB: 256, fileDescriptors: 1024, healthCheck: health, environment: env,
            vcapApplication: ["application_name": .string("lab-app")], vcapServices: "{}")
    }

    /// Starts `assignment` (alongside what already runs) and waits for it to become healthy.
    func start(_ assignment: InstanceAssignment, also others: [InstanceAssignment] = []) async throws -> InstanceReport {
        let waiter = agent.expectEvent { $0.instanceGUID == assignment.instanceGUID && $0.type != .stopped }
        await agent.converge(to: others + [assignment])
        let event = try await waiter.wait(timeout: .seconds(60))
        try #require(event.type == .running, "instance did not become healthy: \(event.type) \(event.reason)")
        return try #require(await agent.reports().first { $0.instanceGUID == assignment.instanceGUID })
    }

    /// GET on the instance's container address; the JSON answer. curl runs off the
    /// cooperative pool, and its bound allows for a loaded machine (some endpoints probe
    /// several unreachable targets with a timeout each).
    func get(_ report: InstanceReport, _ path: String) async throws -> [String: Any] {
        let address = try #require(report.containerAddress)
        let output = try await Self.curl("http://\(address):\(report.containerPort)\(path)", maxSeconds: 60)
        return try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "not JSON: \(output)")
    }

    /// `curl -s URL`'s body, waited for without holding a thread.
    static func curl(_ url: String, maxSeconds: Int) async throws -> String {
        let result = try await CommandRunner.run("/usr/bin/curl", ["-s", "-m", String(maxSeconds), url],
                                                 stdout: .capture, stderr: .null, timeout: .seconds(maxSeconds + 10))
        return String(decoding: result.stdout, as: UTF8.self)
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Log lines the agent shipped.
final class LogCollector: Sendable {
    private let lines = Mutex<[LogLine]>([])
    func append(_ batch: [LogLine]) { lines.withLock { $0 += batch } }
    var all: [LogLine] { lines.withLock { $0 } }
}
