import Containers
import Foundation
import Logging
import NIOPosix
import PlatformClient
import PlatformModels

/// The execution agent (DEA): runs the instances the CC assigns to this host in runc
/// containers, checks their health, ships their logs and reports their state.
///
/// It converges declaratively: the CC's assignment set is the whole truth of what should run
/// here; missing instances are started, extra ones stopped. Each instance is a
/// ``ManagedInstance`` actor owning its record, lifecycle, health checks, logs and stop; the
/// agent holds the map of them and runs the loops (exits, logs, heartbeats, assignments,
/// events). Crashes are reported at once and the crashed instance stays (as CRASHED, without
/// a container) until the CC replaces or drops it. When the CC is unreachable nothing is
/// stopped. A restarted agent adopts the containers its records and the runtime still know,
/// and removes everything of its own it does not know.
public actor ExecutionAgent {
    public let config: AgentConfig
    let runtime: any InstanceRuntime
    private let client: ComponentClient?
    private let outbox: AgentOutbox
    private let slots: StartSlots
    private let policy: InstancePolicy
    private let logger: Logger

    private var instances: [String: ManagedInstance] = [:]
    /// Stops in flight; an instance leaves the map when its stop task ends.
    private var stopping: [String: Task<Void, Never>] = [:]
    private var registered = false
    private var assignmentsVersion = 0
    private var haveAssignments = false

    /// An agent with real runc, shim and network; `client` nil runs it without a CC (tests,
    /// benchmarks drive ``converge(to:)`` themselves).
    public init(config: AgentConfig, client: ComponentClient?, threadPool: NIOThreadPool, logger: Logger) throws {
        let runner = try InstanceRunner.make(config: config, client: client, threadPool: threadPool, logger: logger)
        self.init(config: config, client: client, runtime: runner, logger: logger)
    }

    /// An agent on any runtime (tests use a fake one).
    init(config: AgentConfig, client: ComponentClient?, runtime: any InstanceRuntime, logger: Logger) {
        self.config = config
        self.client = client
        self.runtime = runtime
        self.logger = logger
        self.outbox = AgentOutbox(queuesEvents: client != nil, maxCellLines: config.logBufferLines)
        self.slots = StartSlots(count: config.parallelStarts)
        self.policy = InstancePolicy(config: config)
    }

    // MARK: Running

    /// Adopts what is left from a previous run, then runs until cancelled. Cancellation (graceful
    /// shutdown) leaves every container running for the next agent to adopt.
    public func run() async throws {
        try await prepare()
        await runLoops()
    }

    /// The agent's loops (exits, logs, and with a CC: heartbeats, assignments, events) until
    /// cancelled; call ``prepare()`` first.
    public func runLoops() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.every(.milliseconds(200)) { await $0.checkExits() } }
            group.addTask { await self.every(.milliseconds(250)) { await $0.shipLogs() } }
            if client != nil {
                group.addTask { await self.heartbeatLoop() }
                group.addTask { await self.assignmentLoop() }
                group.addTask { await self.every(.milliseconds(100)) { await $0.reportEvents() } }
            }
            await group.waitForAll()
        }
        for instance in instances.values { await instance.detach() }
        logger.info("execution agent stopped; its containers keep running", metadata: ["instances": "\(instances.count)"])
    }

    /// Adoption: the records on disk and the runtime's containers made consistent. A record
    /// whose container still runs is adopted; one whose container ended is reported as
    /// crashed (unless it was being stopped); leftovers nobody owns are removed.
    public func prepare() async throws {
        let containers = try await runtime.containerIDs()
        var adopted: Set<String> = []
        var restarts: [ManagedInstance] = []
        for var record in runtime.loadRecords() {
            let decision = Adoption.decide(record, hasContainer: containers.contains(record.containerID),
                                           running: runtime.isRunning(record))
            // The previous agent died while its shim was starting the container: the shim
            // goes on (it runs it, or records why not), so the instance is watched from now.
            if decision == .adoptStart { record.startedAt = record.since }
            let instance = makeInstance(record)
            switch decision {
            case .restart:
                // A start that died with its agent and left no shim: undo what it left, begin again.
                instances[record.guid] = instance
                await instance.settleLost()
                restarts.append(instance)
            case .adopt, .adoptStart:
                adopted.insert(record.containerID)
                instances[record.guid] = instance
                logger.info("adopted running instance", metadata: ["instance": "\(record.guid)", "state": "\(record.state.rawValue)"])
                if record.stopRequested { beginStop(record.guid) } else { await instance.adopt() }
            case .settle:
                instances[record.guid] = instance
                await instance.settleLost()
            case .forget:
                await instance.settleLost()
                runtime.forget(record)
            }
        }
        var kept: [InstanceRecord] = []
        for instance in instances.values { kept.append(await instance.record) }
        try await runtime.reclaim(keeping: kept, adoptedContainers: adopted)
        for instance in restarts { await instance.launch() }
    }

    // MARK: Convergence

    /// Makes this host run exactly `desired`: starts what is missing, stops what is extra.
    /// Returns at once: starts and stops run in their instances' own tasks.
    public func converge(to desired: [InstanceAssignment]) async {
        let wanted = Set(desired.map(\.instanceGUID))
        for assignment in desired where instances[assignment.instanceGUID] == nil {
            let instance = makeInstance(InstanceRecord(assignment: assignment, now: Date()))
            instances[instance.guid] = instance
            await instance.launch()
        }
        for guid in instances.keys where !wanted.contains(guid) {
            beginStop(guid)
        }
        outbox.kick()
    }

    /// Stops every instance (operators draining a host; tests). Waits until all are gone.
    public func stopAll() async {
        for guid in instances.keys { beginStop(guid) }
        for task in stopping.values { await task.value }
    }

    /// The instances as the CC will see them in the next heartbeat.
    public func reports() async -> [InstanceReport] {
        var reports: [InstanceReport] = []
        for instance in instances.values { reports.append(await instance.report()) }
        return reports.sorted { ($0.processGUID, $0.index) < ($1.processGUID, $1.index) }
    }

    /// Registers a wait for the next event matching `predicate` now; trigger what should
    /// cause it afterwards, then ``EventExpectation/wait(timeout:)``.
    public nonisolated func expectEvent(where predicate: @escaping @Sendable (InstanceEvent) -> Bool) -> EventExpectation {
        outbox.expect(predicate)
    }

    /// Waits for the next event matching `predicate` (tests and benchmarks); throws after `timeout`.
    public nonisolated func nextEvent(where predicate: @escaping @Sendable (InstanceEvent) -> Bool, timeout: Duration) async throws -> InstanceEvent {
        try await outbox.expect(predicate).wait(timeout: timeout)
    }

    /// Receives every batch of log lines as it is shipped (also when no CC is configured).
    public nonisolated func observeLogs(_ observer: @escaping @Sendable ([LogLine]) -> Void) {
        outbox.observe(observer)
    }

    /// Extracts a droplet archive already on disk into the droplet cache (tests, benchmarks,
    /// agents fed without a CC); assignments naming the same SHA-256 then need no download.
    public func installDroplet(archive: String, sha256: String) async throws {
        try await runtime.installDroplet(archive: archive, sha256: sha256)
    }

    /// Removes the agent's nftables table, every interface and namespace it made and its
    /// cgroup parent. Only after ``stopAll()``: instances still running lose their network.
    public func teardownNetwork() async throws {
        try await runtime.teardown()
    }

    // MARK: Instances

    private func makeInstance(_ record: InstanceRecord) -> ManagedInstance {
        ManagedInstance(record: record, runtime: runtime, outbox: outbox, slots: slots, policy: policy, logger: logger)
    }

    /// Starts stopping `guid` unless it already is; the instance leaves the map once it is
    /// gone, after its last log lines were shipped.
    private func beginStop(_ guid: String) {
        guard stopping[guid] == nil, let instance = instances[guid] else { return }
        stopping[guid] = Task {
            await instance.stop()
            await self.shipLogs(of: [instance])
            self.runtime.forget(await instance.record)
            self.finishStop(guid)
            await instance.announceStopped()
        }
    }

    private func finishStop(_ guid: String) {
        instances[guid] = nil
        stopping[guid] = nil
        outbox.kick()
    }

    // MARK: Loops

    private func every(_ interval: Duration, _ body: @Sendable (ExecutionAgent) async -> Void) async {
        while !Task.isCancelled {
            await body(self)
            try? await Task.sleep(for: interval)
        }
    }

    /// Lets every running instance look at its container's exit record.
    func checkExits() async {
        for instance in instances.values { await instance.checkExit() }
    }

    private func heartbeatLoop() async {
        guard let client else { return }
        while !Task.isCancelled {
            _ = outbox.takeKick()
            do {
                if !registered {
                    let answer = try await client.registerAgent(config.agentID, AgentRegistration(
                        hostAddress: config.hostAddress, capacity: config.capacity, stacks: config.stacks,
                        version: PlatformVersion.current))
                    registered = true
                    logger.info("registered with the cloud controller", metadata: [
                        "agent": "\(answer.agentID)", "assignments_version": "\(answer.assignmentsVersion)"])
                }
                await sampleUsage()
                _ = try await client.heartbeat(agent: config.agentID, AgentHeartbeat(
                    available: await available(), instances: await reports(), assignmentsVersion: assignmentsVersion))
            } catch let failure as ComponentClient.Failure where failure.statusCode == 404 {
                logger.warning("the cloud controller does not know this agent; registering again")
                registered = false
                continue
            } catch {
                logger.warning("heartbeat failed; instances keep running", metadata: ["error": "\(error)"])
            }
            // Wait for the interval or an earlier kick (a state change), whichever comes first;
            // a kick waits 20 ms more so that changes arriving together go in one heartbeat.
            let deadline = ContinuousClock.now + .seconds(config.heartbeatIntervalSeconds)
            while !Task.isCancelled, !outbox.isKicked, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func assignmentLoop() async {
        guard let client else { return }
        var backoff = 0.5
        while !Task.isCancelled {
            guard registered else {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            do {
                let answer = try await client.assignments(agent: config.agentID, after: haveAssignments ? assignmentsVersion : nil,
                                                          waitSeconds: 30)
                backoff = 0.5
                if !haveAssignments || answer.version != assignmentsVersion {
                    logger.info("assignments", metadata: ["version": "\(answer.version)", "instances": "\(answer.instances.count)"])
                }
                assignmentsVersion = answer.version
                haveAssignments = true
                await converge(to: answer.instances)
            } catch let failure as ComponentClient.Failure where failure.statusCode == 404 {
                registered = false
            } catch is CancellationError {
                return
            } catch {
                logger.warning("assignments unavailable; keeping the current instances", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(backoff * 2, 10)
            }
        }
    }

    /// Sends queued instance events, oldest first, 100 at a time.
    private func reportEvents() async {
        guard let client, registered else { return }
        while !Task.isCancelled {
            let batch = outbox.pendingEvents(limit: 100)
            guard !batch.isEmpty else { return }
            do {
                try await client.report(agent: config.agentID, events: batch)
                outbox.removeEvents(batch.count)
            } catch {
                logger.debug("event report failed; will retry", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    // MARK: Logs

    /// Ships new log lines of every instance with the agent's own lines.
    func shipLogs() async {
        await shipLogs(of: Array(instances.values), withCellLines: true)
    }

    /// Reads new log lines of `of` and ships them. A reader's position moves (and is saved)
    /// only once its lines reached the CC, so a CC outage or an agent restart loses nothing
    /// the shim kept on disk.
    private func shipLogs(of targets: [ManagedInstance], withCellLines: Bool = false) async {
        let cell = withCellLines ? outbox.pendingCellLines() : []
        var lines = cell
        var advanced: [(ManagedInstance, ShimLogReader)] = []
        for instance in targets where lines.count < 5000 {
            guard let read = await instance.readLogs(max: 1000) else { continue }
            lines += read.lines
            advanced.append((instance, read.next))
        }
        guard !lines.isEmpty else { return }
        if let client {
            for batch in Self.batches(of: lines) {
                do {
                    try await client.ship(logs: batch)
                } catch let failure as ComponentClient.Failure where (400..<500).contains(failure.statusCode ?? 0) {
                    // Refused for good (too large, malformed): retrying would wedge every later line.
                    logger.warning("the controller refused a log batch; dropping it", metadata: [
                        "lines": "\(batch.count)", "error": "\(failure)"])
                } catch {
                    logger.debug("log shipping failed; will retry", metadata: ["error": "\(error)"])
                    return
                }
            }
        }
        outbox.notifyObserver(lines)
        if !cell.isEmpty { outbox.removeCellLines(cell.count) }
        for (instance, reader) in advanced { await instance.commitLogs(reader) }
    }

    /// Batches within the CC's limits: at most 1000 lines and about 4 MiB of messages each.
    static func batches(of lines: [LogLine]) -> [[LogLine]] {
        var result: [[LogLine]] = []
        var current: [LogLine] = []
        var bytes = 0
        for line in lines {
            let size = line.message.utf8.count + 200
            if !current.isEmpty && (current.count >= 1000 || bytes + size > 4 << 20) {
                result.append(current)
                current = []
                bytes = 0
            }
            current.append(line)
            bytes += size
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    // MARK: Capacity and usage

    private func available() async -> AgentCapacity {
        var memory = 0, disk = 0, count = 0
        for instance in instances.values {
            guard let held = await instance.heldCapacity else { continue }
            memory += held.memoryMB
            disk += held.diskMB
            count += 1
        }
        return AgentCapacity(memoryMB: config.capacity.memoryMB - memory, diskMB: config.capacity.diskMB - disk,
                             instances: config.capacity.instances - count)
    }

    /// CPU, memory and disk of every live instance (disk at most every 30 s each).
    func sampleUsage() async {
        for instance in instances.values { await instance.sampleUsage() }
    }
}

/// What a restarted agent does with a record it finds on disk.
enum Adoption: Equatable {
    /// The container still runs: keep it (and go on stopping it if a stop was asked).
    case adopt
    /// A start the previous agent did not see through whose shim still runs: the shim starts
    /// the container or records why it could not, so the instance is kept and watched.
    case adoptStart
    /// A start the previous agent did not see through that left no shim: what it left is
    /// removed and the start begins again.
    case restart
    /// The container is gone: report how it ended, keep the record until the CC drops it.
    case settle
    /// It was being stopped and is gone: remove what is left.
    case forget

    static func decide(_ record: InstanceRecord, hasContainer: Bool, running: Bool) -> Adoption {
        let live = record.startedAt != nil && record.state != .crashed
        if live, hasContainer, running { return .adopt }
        if record.startedAt == nil, record.state == .starting, !record.stopRequested {
            // Whether runc lists the container yet does not matter: a live shim owns the start.
            return running ? .adoptStart : .restart
        }
        return record.stopRequested ? .forget : .settle
    }
}
