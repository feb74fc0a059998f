import Containers
import Foundation
import Logging
import PlatformModels
import Synchronization

@testable import ExecutionAgent

/// An in-memory ``InstanceRuntime``: containers are entries in a table, exits are set by the
/// test, health probes answer what the test says. No root, no runc, no network: the agent's
/// decisions run against it in milliseconds.
final class FakeRuntime: InstanceRuntime {
    struct Container {
        var running = true
        var exit: (status: Int, reason: String)?
        var shimAlive = true
        var ignoresTerm = false
        var signals: [Int32] = []
    }

    struct State {
        var containers: [String: Container] = [:]
        /// Exit records outlive their containers, as a shim's do.
        var exits: [String: (status: Int, reason: String)] = [:]
        var records: [String: InstanceRecord] = [:]
        var healthy = true
        /// Starts wait here until the test lets them go (nil: start at once).
        var startGate: Bool? = nil
        var startsInFlight = 0
        var maxStartsInFlight = 0
        var startFailure: String?
        var persistFailure: String?
        var removed: [String] = []
        var reclaimed: Set<String>?
        var nextAddress = 2
        var tornDown = false
    }

    let state = Mutex(State())
    let logRoot: String

    init() {
        logRoot = FileManager.default.temporaryDirectory.path + "/cf-like-fake-runtime-" + UUID().uuidString
    }

    // MARK: Test controls

    func set(_ change: (inout State) -> Void) { state.withLock { change(&$0) } }
    func read<T>(_ body: (State) -> T) -> T { state.withLock { body($0) } }

    /// Ends the container of `guid` as its shim would record it.
    func exit(_ guid: String, status: Int, reason: String) {
        state.withLock { state in
            let id = "cfl-" + guid
            state.containers[id]?.running = false
            state.containers[id]?.exit = (status, reason)
            state.exits[id] = (status, reason)
        }
    }

    /// Leaves a container the runtime knows (for adoption tests).
    func addContainer(_ id: String, running: Bool = true) {
        state.withLock { $0.containers[id] = Container(running: running, exit: running ? nil : (3, "exited with status 3")) }
    }

    // MARK: InstanceRuntime

    func layer(for droplet: DropletRef) async throws -> String { "/fake/droplets/" + droplet.sha256 }
    func installDroplet(archive: String, sha256: String) async throws {}

    func start(_ input: InstanceRecord, layer: String) async throws -> InstanceRecord {
        let gated = state.withLock { state -> Bool in
            state.startsInFlight += 1
            state.maxStartsInFlight = max(state.maxStartsInFlight, state.startsInFlight)
            return state.startGate == true
        }
        defer { state.withLock { $0.startsInFlight -= 1 } }
        if gated {
            while read({ $0.startGate == true }) {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        if let failure = read({ $0.startFailure }) { throw AgentError(failure) }
        var record = input
        let address = state.withLock { state -> Int in
            state.nextAddress += 4
            state.containers[record.containerID] = Container()
            return state.nextAddress
        }
        record.dropletLayer = layer
        record.attachment = NetworkAttachment(id: record.containerID, namespaceName: "fake", namespacePath: "/fake/netns",
                                              hostInterface: "fake\(address)", gatewayAddress: "10.9.0.1", containerAddress: "10.9.\(address / 256).\(address % 256)", hostPort: 60000 + address,
                                              containerPort: 8080)
        record.startedAt = Date().timeIntervalSince1970
        return record
    }

    func exit(of record: InstanceRecord) -> (status: Int, reason: String)? {
        read { $0.containers[record.containerID]?.exit ?? $0.exits[record.containerID] }
    }

    func shimAlive(_ record: InstanceRecord) -> Bool {
        read { $0.containers[record.containerID]?.shimAlive ?? false }
    }

    func signal(_ record: InstanceRecord, _ signal: Int32, all: Bool) async {
        state.withLock { state in
            guard var container = state.containers[record.containerID], container.running else { return }
            container.signals.append(signal)
            if signal == 9 || !container.ignoresTerm {
                container.running = false
                container.exit = signal == 9 ? (137, "killed by signal 9") : (143, "killed by signal 15")
                state.exits[record.containerID] = container.exit
            }
            state.containers[record.containerID] = container
        }
    }

    func removeContainer(_ record: InstanceRecord) async {
        state.withLock { state in
            state.containers[record.containerID] = nil
            state.removed.append(record.guid)
        }
    }

    func forget(_ record: InstanceRecord) {
        state.withLock { $0.records[record.guid] = nil }
    }

    func persist(_ record: InstanceRecord) throws {
        try state.withLock { state in
            if let failure = state.persistFailure { throw AgentError(failure) }
            state.records[record.guid] = record
        }
    }

    func loadRecords() -> [InstanceRecord] { read { Array($0.records.values) } }

    func containerIDs() async throws -> Set<String> { read { Set($0.containers.keys) } }

    func reclaim(keeping records: [InstanceRecord], adoptedContainers: Set<String>) async throws {
        state.withLock { state in
            for id in state.containers.keys where !adoptedContainers.contains(id) { state.containers[id] = nil }
            state.reclaimed = Set(records.map(\.guid))
        }
    }

    func probe(_ spec: HealthCheckSpec, address: String, port: Int) async -> HealthProbe.Outcome {
        read { $0.healthy } ? .healthy : .unhealthy("connection refused")
    }

    func counters(of record: InstanceRecord) -> CgroupStats? {
        CgroupStats(memoryUsageBytes: 10 << 20, cpuUsageNanos: 1_000_000)
    }

    func diskBytes(of record: InstanceRecord) async -> Int64? { 1 << 20 }

    func logDirectory(of guid: String) -> String { logRoot + "/" + guid }

    func teardown() async throws { set { $0.tornDown = true } }
}

/// An agent on a ``FakeRuntime`` with quick timings.
struct FakeAgentLab {
    let runtime: FakeRuntime
    let agent: ExecutionAgent
    let config: AgentConfig

    init(parallelStarts: Int = 4, stopGraceSeconds: Int = 1, runtime: FakeRuntime = FakeRuntime()) throws {
        let base = FileManager.default.temporaryDirectory.path + "/cf-like-fake-agent-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try Data("fake-credential".utf8).write(to: URL(fileURLWithPath: base + "/credential"))
        let yaml = """
            controller:
              internal_credential_file: \(base)/credential
            dea:
              agent_id: fake-agent
              state_dir: /nonexistent/fake-agent
              memory_mb: 65536
              parallel_starts: \(parallelStarts)
              start_check_interval_ms: 50
              liveness_interval_seconds: 1
              stop_grace_seconds: \(stopGraceSeconds)
            """
        let path = base + "/config.yaml"
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
        config = try AgentConfig(document: ConfigDocument(path: path))
        self.runtime = runtime
        var logger = Logger(label: "cf-like.fake-agent")
        logger.logLevel = .critical
        agent = ExecutionAgent(config: config, client: nil, runtime: runtime, logger: logger)
    }

    /// Converges to `desired` and waits until `instance` is running.
    func converge(to desired: [InstanceAssignment], untilRunning instance: InstanceAssignment) async throws {
        let up = agent.expectEvent { $0.instanceGUID == instance.instanceGUID && $0.type == .running }
        await agent.converge(to: desired)
        _ = try await up.wait(timeout: .seconds(60))
    }

    /// Converges to one new instance and returns its first event, with every log line shipped
    /// from then on.
    func firstEventOfOneInstance() async throws -> (InstanceEvent, LogCollector) {
        let a = FakeAgentLab.assignment()
        let first = agent.expectEvent { $0.instanceGUID == a.instanceGUID }
        let lines = LogCollector()
        agent.observeLogs { lines.append($0) }
        await agent.converge(to: [a])
        return (try await first.wait(timeout: .seconds(60)), lines)
    }

    /// An agent restarted on the same runtime (same records and containers).
    func restarted() throws -> FakeAgentLab {
        try FakeAgentLab(parallelStarts: config.parallelStarts, stopGraceSeconds: config.stopGraceSeconds, runtime: runtime)
    }

    static func assignment(index: Int = 0, memoryMB: Int = 64, health: HealthCheckSpec.Kind = .port) -> InstanceAssignment {
        let app = UUID().uuidString.lowercased()
        return InstanceAssignment(
            instanceGUID: UUID().uuidString.lowercased(), appGUID: app, appName: "fake-app", processGUID: app, processType: "web",
            processVersion: UUID().uuidString.lowercased(), index: index,
            droplet: DropletRef(guid: UUID().uuidString.lowercased(), sha256: String(repeating: "a", count: 64), downloadPath: "/x"),
            command: "run", memoryMB: memoryMB, diskMB: 256, fileDescriptors: 1024,
            healthCheck: HealthCheckSpec(type: health, timeoutSeconds: 5), environment: [:],
            vcapApplication: [:], vcapServices: "{}")
    }
}
