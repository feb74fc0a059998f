import Containers
import Foundation
import Logging
import NIOPosix
import PlatformModels

/// `ops/bench/container-start`: how long the agent takes from a start request to the app's
/// process running, beside a bare `runc run /bin/true` of the same root filesystem measured in
/// the same run. The agent runs without a CC (assignments are handed to it directly), with its
/// own state directory, subnet, ports and nftables table, and everything is removed at the end.
/// It keeps the default network pool; each sample, of either kind, begins once the pool's
/// refill after the previous start is over, so the refill's `ip` and `nft` slow down neither.
public enum ContainerStartBenchmark {
    public struct Result: Sendable {
        public var agentMillis: [Double]
        public var bareMillis: [Double]
    }

    /// Percentile (nearest rank) of `values`, in the values' unit.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[max(0, min(sorted.count - 1, rank))]
    }

    /// Runs `runs` agent starts and `runs` bare runc runs, interleaved.
    public static func run(runs: Int, workDirectory: String, logger: Logger) async throws -> Result {
        let fm = FileManager.default
        try? fm.removeItem(atPath: workDirectory)
        try fm.createDirectory(atPath: workDirectory + "/src/app", withIntermediateDirectories: true)
        try Data("benchmark-internal-credential-0123".utf8).write(to: URL(fileURLWithPath: workDirectory + "/credential"))
        let yaml = """
            controller:
              internal_credential_file: \(workDirectory)/credential
            dea:
              agent_id: bench-container-start
              state_dir: \(workDirectory)/state
              subnet: 10.251.0.0/22
              host_port_min: 45000
              host_port_max: 45999
              nftables_table: cflike_bench
              interface_prefix: cfb
              memory_mb: 8192
              stop_grace_seconds: 2
            """
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: workDirectory + "/config.yaml"))
        let config = try AgentConfig(document: ConfigDocument(path: workDirectory + "/config.yaml"))
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        defer { threadPool.shutdownGracefully { _ in } }
        let agent = try ExecutionAgent(config: config, client: nil, threadPool: threadPool, logger: logger)

        // The droplet: an app whose first act is to print a line; its timestamp (taken by the
        // shim as the line arrives) marks the app's process running.
        try Data("#!/bin/bash\necho started\nexec sleep 600\n".utf8).write(to: URL(fileURLWithPath: workDirectory + "/src/app/run.sh"))
        chmod(workDirectory + "/src/app/run.sh", 0o755)
        let archive = workDirectory + "/droplet.tgz"
        try await Self.run("/bin/tar", ["-czf", archive, "-C", workDirectory + "/src", "."])
        let sha = try DropletCache.sha256(ofFile: archive)
        try await agent.installDroplet(archive: archive, sha256: sha)
        try await agent.prepare()
        let firstLines = FirstLines()
        agent.observeLogs { lines in
            for line in lines where line.message == "started" && line.sourceType.hasPrefix("APP/") {
                firstLines.record(app: line.appGUID, nanos: line.timestamp)
            }
        }
        let loops = Task { await agent.runLoops() }

        // The bare reference: the same stack + droplet overlay, `runc run /bin/true` as vcap.
        let bare = workDirectory + "/bare"
        try fm.createDirectory(atPath: bare + "/upper", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: bare + "/work", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: bare + "/rootfs", withIntermediateDirectories: true)
        let overlay = OverlayMount(lowerDirs: [workDirectory + "/state/droplets/" + sha, workDirectory + "/state/stack"],
                                   upperDir: bare + "/upper", workDir: bare + "/work", target: bare + "/rootfs")
        try overlay.mount()
        let spec = try SecureSpec(args: ["/bin/true"], cwd: "/home/vcap/app", rootfsPath: bare + "/rootfs", hostname: "bare",
                                  extraMounts: HostStack().readOnlyMounts(), cgroupsPath: "/cflike/bench-bare").makeSpec()
        _ = try OCIBundle.create(at: bare + "/bundle", spec: spec)
        let runc = Runc.locate() ?? "/usr/sbin/runc"

        var agentMillis: [Double] = []
        var bareMillis: [Double] = []
        defer {
            try? OverlayMount.unmount(bare + "/rootfs")
        }
        let network = (agent.runtime as? InstanceRunner)?.network
        for i in 0..<runs {
            await network?.waitForPool()
            let droplet = DropletRef(guid: "bench", sha256: sha, downloadPath: "/unused")
            let app = UUID().uuidString.lowercased()
            let assignment = InstanceAssignment(
                instanceGUID: UUID().uuidString.lowercased(), appGUID: app, appName: "bench", processGUID: app, processType: "web",
                processVersion: "1", index: 0, droplet: droplet, command: "./run.sh", memoryMB: 64, diskMB: 64,
                healthCheck: HealthCheckSpec(type: .process))
            let started = Int64(Date().timeIntervalSince1970 * 1e9)
            await agent.converge(to: [assignment])
            let deadline = Date().addingTimeInterval(30)
            while firstLines.nanos(app: app) == nil, Date() < deadline { try await Task.sleep(for: .milliseconds(2)) }
            guard let seen = firstLines.nanos(app: app) else { throw AgentError("run \(i): the app never printed its first line") }
            agentMillis.append(Double(seen - started) / 1e6)
            await agent.stopAll()

            await network?.waitForPool()
            let t0 = ContinuousClock.now
            try await Self.run(runc, ["--root", workDirectory + "/bare-runc", "run", "--bundle", bare + "/bundle", "bare-\(i)"])
            let elapsed = ContinuousClock.now - t0
            bareMillis.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
        }
        loops.cancel()
        _ = await loops.value
        try? await agent.teardownNetwork()
        try? OverlayMount.unmount(bare + "/rootfs")
        rmdir("/sys/fs/cgroup/memory/cflike/bench-bare")
        try? fm.removeItem(atPath: workDirectory)
        return Result(agentMillis: agentMillis, bareMillis: bareMillis)
    }

    private static func run(_ executable: String, _ arguments: [String]) async throws {
        let result = try await CommandRunner.run(executable, arguments, stdout: .null, timeout: .seconds(120))
        guard result.status == 0 else {
            throw AgentError(
                "\(executable) \(arguments.joined(separator: " ")) exited with \(result.status): \(CommandRunner.tailText(result.stderr))")
        }
    }
}

/// The first-line timestamp seen per app.
private final class FirstLines: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [String: Int64] = [:]
    func record(app: String, nanos: Int64) {
        lock.lock()
        defer { lock.unlock() }
        if seen[app] == nil { seen[app] = nanos }
    }
    func nanos(app: String) -> Int64? {
        lock.lock()
        defer { lock.unlock() }
        return seen[app]
    }
}
