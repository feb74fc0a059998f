import Containers
import Foundation
import Logging
import NIOCore
import NIOPosix
import PlatformClient
import PlatformModels

/// The execution agent (DEA): runs the instances the CC assigns to this host in runc
/// containers, checks their health, ships their logs and reports their state.
///
/// It converges declaratively: the CC's assignment set is the whole truth of what should run
/// here; missing instances are started, extra ones stopped. Crashes are reported at once and
/// the crashed instance stays (as CRASHED, without a container) until the CC replaces or drops
/// it. When the CC is unreachable nothing is stopped. A restarted agent adopts the containers
/// its records and runc still know, and removes everything of its own it does not know.
public actor ExecutionAgent {
    public let config: AgentConfig
    nonisolated let runner: InstanceRunner
    private let client: ComponentClient?
    private let probe: HealthProbe
    private let threadPool: NIOThreadPool
    private let droplets: DropletCache
    private let network: ContainerNetwork
    private let logger: Logger

    private var instances: [String: InstanceRecord] = [:]
    private var lifecycles: [String: Task<Void, Never>] = [:]
    private var stopping: [String: Task<Void, Never>] = [:]
    private var logReaders: [String: ShimLogReader] = [:]
    private var samples: [String: UsageSample] = [:]
    private var pendingEvents: [InstanceEvent] = []
    private var cellLines: [LogLine] = []
    private var droppedCellLines = 0
    private var registered = false
    private var assignmentsVersion = 0
    private var haveAssignments = false
    private var startSlots: Int
    private var slotWaiters: [CheckedContinuation<Void, Never>] = []
    /// Set when something changed that the CC should hear about before the next interval.
    private var kicked = false
    private var eventWaiters: [(InstanceEvent) -> Void] = []
    private var logObserver: (@Sendable ([LogLine]) -> Void)?

    struct UsageSample {
        var cpuNanos: UInt64
        var at: ContinuousClock.Instant
        var usage: InstanceUsage
        var diskCheckedAt: ContinuousClock.Instant?
    }

    /// An agent with real runc, shim and network; `client` nil runs it without a CC (tests,
    /// benchmarks drive ``converge(to:)`` themselves).
    public init(config: AgentConfig, client: ComponentClient?, threadPool: NIOThreadPool, logger: Logger) throws {
        self.config = config
        self.client = client
        self.threadPool = threadPool
        self.logger = logger
        self.probe = HealthProbe()
        let state = config.stateDirectory
        let fm = FileManager.default
        for dir in [state, state + "/instances", state + "/runc", state + "/droplets"] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        // The stack skeleton is a lower layer of running overlays: build it once, never rewrite it under them.
        let stack = state + "/stack"
        if !fm.fileExists(atPath: stack + "/etc/passwd") {
            try HostStack(hostname: "localhost").buildSkeleton(at: stack)
        }
        chmod(state, 0o711)
        let runc = try Runc(executable: config.runcPath, root: state + "/runc", logger: logger)
        let shim = try ContainerShim(executable: config.shimPath, runc: runc, logMaxBytes: config.logMaxBytes,
                                     linesPerSecond: config.logLinesPerSecond, burst: config.logLinesPerSecond * 2, logger: logger)
        let network = try ContainerNetwork(
            config: ContainerNetworkConfig(subnet: config.subnet, hostPortRange: config.hostPortRange, allowOutbound: config.allowOutbound,
                                           tableName: config.nftablesTable, interfacePrefix: config.interfacePrefix),
            logger: logger)
        self.network = network
        let droplets = try DropletCache(root: state + "/droplets", client: client, threadPool: threadPool, logger: logger)
        self.droplets = droplets
        self.runner = InstanceRunner(runc: runc, shim: shim, network: network, droplets: droplets, stackSkeleton: stack,
                                     instancesRoot: state + "/instances", agentID: config.agentID, hostAddress: config.hostAddress,
                                     pidsLimit: config.pidsLimit, logger: logger)
        self.startSlots = config.parallelStarts
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
            group.addTask { await self.monitorLoop() }
            group.addTask { await self.logLoop() }
            if client != nil {
                group.addTask { await self.heartbeatLoop() }
                group.addTask { await self.assignmentLoop() }
                group.addTask { await self.eventLoop() }
            }
            await group.waitForAll()
        }
        for task in lifecycles.values { task.cancel() }
        logger.info("execution agent stopped; its containers keep running", metadata: ["instances": "\(instances.count)"])
    }

    /// Adoption: records on disk + runc's containers + the network table, made consistent.
    public func prepare() async throws {
        var keep: [NetworkAttachment] = []
        let known = try await runner.runc.list()
        let runcIDs = Set(known.map(\.id))
        for var record in runner.loadRecords() {
            let hasContainer = runcIDs.contains(record.containerID)
            let live = record.startedAt != nil && record.state != .crashed
            if live, hasContainer, runner.isRunning(record) {
                instances[record.guid] = record
                if let attachment = record.attachment { keep.append(attachment) }
                logger.info("adopted running instance", metadata: ["instance": "\(record.guid)", "state": "\(record.state.rawValue)"])
                if record.stopRequested {
                    stopping[record.guid] = Task { await self.stop(record.guid) }
                } else {
                    lifecycles[record.guid] = Task { await self.watchHealth(record.guid, adopted: true) }
                }
                continue
            }
            // Not running any more: report how it ended (if it was meant to run) and clean up.
            if let attachment = record.attachment { keep.append(attachment) }
            instances[record.guid] = record
            if live && !record.stopRequested {
                let ended = runner.exit(of: record)
                crash(&record, exitStatus: ended?.status,
                      reason: ended?.reason ?? "container lost while the agent was not running", kind: .crashed)
            }
            await runner.removeContainer(record)
            if let attachment = record.attachment { keep.removeAll { $0 == attachment } }
            record.attachment = nil
            if record.stopRequested {
                instances[record.guid] = nil
                runner.forget(record)
            } else {
                record.startedAt = nil
                instances[record.guid] = record
                try? runner.persist(record)
            }
        }
        // runc containers of ours that no adopted instance owns: leftovers of a start that never finished.
        let adopted = Set(instances.values.filter { $0.startedAt != nil }.map(\.containerID))
        for state in known where !adopted.contains(state.id) {
            logger.warning("removing unknown container", metadata: ["container": "\(state.id)"])
            try? await runner.runc.delete(id: state.id, force: true)
        }
        // Mounts under our instance directory that no adopted instance uses.
        let root = runner.instancesRoot + "/"
        for mount in (try? MountTable.current()) ?? [] where mount.hasPrefix(root) && mount.hasSuffix("/rootfs") {
            let guid = String(mount.dropFirst(root.count).dropLast("/rootfs".count))
            if instances[guid]?.startedAt == nil {
                try? OverlayMount.unmount(mount)
            }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: runner.instancesRoot)) ?? [] where instances[name] == nil {
            try? FileManager.default.removeItem(atPath: runner.instancesRoot + "/" + name)
        }
        try await network.prepare(keeping: keep)
        for (guid, record) in instances {
            logReaders[guid] = ShimLogReader(stateDir: runner.paths(guid).shim, position: record.logPosition)
        }
    }

    // MARK: Convergence

    /// Makes this host run exactly `desired`: starts what is missing, stops what is extra.
    public func converge(to desired: [InstanceAssignment]) {
        let wanted = Dictionary(desired.map { ($0.instanceGUID, $0) }, uniquingKeysWith: { first, _ in first })
        for assignment in desired where instances[assignment.instanceGUID] == nil {
            let record = InstanceRecord(assignment: assignment, now: Date())
            instances[record.guid] = record
            try? runner.persist(record)
            logReaders[record.guid] = ShimLogReader(stateDir: runner.paths(record.guid).shim, position: nil)
            lifecycles[record.guid] = Task { await self.lifecycle(record.guid) }
        }
        for (guid, record) in instances where wanted[guid] == nil && !record.stopRequested {
            stopping[guid] = Task { await self.stop(guid) }
        }
        kick()
    }

    /// Stops every instance (operators draining a host; tests). Waits until all are gone.
    public func stopAll() async {
        for (guid, record) in instances where !record.stopRequested {
            stopping[guid] = Task { await self.stop(guid) }
        }
        for task in stopping.values { await task.value }
    }

    /// The instances as the CC will see them in the next heartbeat.
    public func reports() -> [InstanceReport] {
        instances.values.sorted { ($0.assignment.processGUID, $0.assignment.index) < ($1.assignment.processGUID, $1.assignment.index) }
            .map(report)
    }

    /// Waits for the next event matching `predicate` (tests and benchmarks).
    public func nextEvent(where predicate: @escaping @Sendable (InstanceEvent) -> Bool, timeout: Duration) async throws -> InstanceEvent {
        try await withThrowingTaskGroup(of: InstanceEvent.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<InstanceEvent, Never>) in
                    Task { await self.addEventWaiter(predicate, continuation) }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw AgentError("no matching instance event within \(timeout)")
            }
            guard let first = try await group.next() else { throw AgentError("no event") }
            group.cancelAll()
            return first
        }
    }

    private func addEventWaiter(_ predicate: @escaping @Sendable (InstanceEvent) -> Bool,
                                _ continuation: CheckedContinuation<InstanceEvent, Never>) {
        var done = false
        eventWaiters.append { event in
            guard !done, predicate(event) else { return }
            done = true
            continuation.resume(returning: event)
        }
    }

    /// Receives every batch of log lines as it is shipped (also when no CC is configured).
    public func observeLogs(_ observer: @escaping @Sendable ([LogLine]) -> Void) {
        logObserver = observer
    }

    /// Extracts a droplet archive already on disk into the droplet cache (tests, benchmarks,
    /// agents fed without a CC); assignments naming the same SHA-256 then need no download.
    public func installDroplet(archive: String, sha256: String) async throws {
        _ = try await droplets.install(archive: archive, sha256: sha256)
    }

    /// Removes the agent's nftables table and every interface and namespace it made. Only
    /// after ``stopAll()``: instances still running lose their network.
    public func teardownNetwork() async throws {
        try await network.teardown()
        // The agent's (now empty) cgroup parent in every hierarchy.
        await CgroupParent("/cflike/\(config.agentID)").remove()
    }

    // MARK: One instance

    private func acquireSlot() async {
        if startSlots > 0 {
            startSlots -= 1
            return
        }
        await withCheckedContinuation { slotWaiters.append($0) }
    }

    private func releaseSlot() {
        if slotWaiters.isEmpty { startSlots += 1 } else { slotWaiters.removeFirst().resume() }
    }

    private func lifecycle(_ guid: String) async {
        guard let initial = instances[guid] else { return }
        cell(initial, "Creating container for app instance \(initial.assignment.index)")
        await acquireSlot()
        var started: InstanceRecord
        do {
            try Task.checkCancellation()
            let layer = try await droplets.layer(for: initial.assignment.droplet)
            try Task.checkCancellation()
            started = try await runner.start(initial, layer: layer)
            releaseSlot()
        } catch {
            releaseSlot()
            guard var record = instances[guid], !record.stopRequested else { return }
            let words = error is CancellationError ? "start cancelled" : "\(error)"
            logger.error("instance failed to start", metadata: ["instance": "\(guid)", "error": "\(words)"])
            cell(record, "Failed to create container: \(words)")
            crash(&record, exitStatus: nil, reason: "failed to start: \(words)", kind: .failed)
            instances[guid] = record
            try? runner.persist(record)
            return
        }
        guard var record = instances[guid] else { return }
        record.attachment = started.attachment
        record.dropletLayer = started.dropletLayer
        record.startedAt = started.startedAt
        record.assignment = started.assignment
        instances[guid] = record
        try? runner.persist(record)
        cell(record, "Container became running (health check: \(record.assignment.healthCheck.type.rawValue))")
        if record.stopRequested { return }
        await watchHealth(guid, adopted: false)
    }

    /// Start checks every interval until healthy or the start timeout; then liveness checks.
    private func watchHealth(_ guid: String, adopted: Bool) async {
        guard let record = instances[guid], let address = record.attachment?.containerAddress else { return }
        let spec = record.assignment.healthCheck
        let port = record.attachment?.containerPort ?? InstanceEnvironment.port
        if !(adopted && record.state == .running) {
            let timeout = Double(min(max(spec.timeoutSeconds, 1), 600))
            let deadline = ContinuousClock.now + .seconds(timeout)
            var last = HealthProbe.Outcome.unhealthy("no check ran")
            while true {
                guard !Task.isCancelled, let current = instances[guid], current.state == .starting, !current.stopRequested else { return }
                last = await probe.check(spec, address: address, port: port)
                guard !Task.isCancelled, var now = instances[guid], now.state == .starting, !now.stopRequested else { return }
                if last == .healthy {
                    now.state = .running
                    now.since = Date().timeIntervalSince1970
                    now.details = nil
                    instances[guid] = now
                    try? runner.persist(now)
                    cell(now, "Container became healthy")
                    emit(now, .running, exitStatus: nil, reason: "healthy")
                    kick()
                    break
                }
                if ContinuousClock.now >= deadline {
                    let why: String
                    if case .unhealthy(let words) = last { why = words } else { why = "unknown" }
                    await failHealth(guid, reason: "Instance never healthy after \(Int(timeout))s: \(why)")
                    return
                }
                try? await Task.sleep(for: .seconds(config.startCheckIntervalSeconds))
            }
        }
        guard spec.type != .process else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(config.livenessIntervalSeconds))
            guard !Task.isCancelled, let current = instances[guid], current.state == .running, !current.stopRequested else { return }
            let outcome = await probe.check(spec, address: address, port: port)
            guard !Task.isCancelled, let after = instances[guid], after.state == .running, !after.stopRequested else { return }
            if case .unhealthy(let words) = outcome {
                await failHealth(guid, reason: "Instance became unhealthy: \(words)")
                return
            }
        }
    }

    private func failHealth(_ guid: String, reason: String) async {
        guard let before = instances[guid] else { return }
        // A process that just died (an OOM kill, a crash) fails its check too, a moment before
        // its shim records the exit: give the exit the chance to speak with its real status.
        let deadline = ContinuousClock.now + .milliseconds(1500)
        while ContinuousClock.now < deadline {
            if runner.exit(of: before) != nil || !ContainerShim.shimAlive(stateDir: runner.paths(guid).shim) { return }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard var record = instances[guid], record.state != .crashed, !record.stopRequested else { return }
        cell(record, reason)
        crash(&record, exitStatus: nil, reason: reason, kind: .crashed)
        instances[guid] = record
        try? runner.persist(record)
        await runner.signal(record, 9, all: true)
    }

    /// Marks a crash, queues its event and writes a CELL log line.
    private func crash(_ record: inout InstanceRecord, exitStatus: Int?, reason: String, kind: InstanceEvent.Kind) {
        record.state = .crashed
        record.crashCount += 1
        record.since = Date().timeIntervalSince1970
        record.details = reason
        record.exitStatus = exitStatus
        samples[record.guid] = nil
        // Visible in reports before anyone hears of the event.
        if instances[record.guid] != nil { instances[record.guid] = record }
        emit(record, kind, exitStatus: exitStatus, reason: reason)
        kick()
    }

    private func stop(_ guid: String) async {
        guard var record = instances[guid] else { return }
        record.stopRequested = true
        if record.state != .crashed { record.state = .stopping }
        record.since = Date().timeIntervalSince1970
        instances[guid] = record
        try? runner.persist(record)
        kick()
        if let task = lifecycles.removeValue(forKey: guid) {
            task.cancel()
            await task.value
        }
        guard let current = instances[guid] else { return }
        record = current
        if record.startedAt != nil {
            if runner.isRunning(record) {
                cell(record, "Stopping app instance \(record.assignment.index)")
                await runner.signal(record, 15)
                if !(await waitForExit(record, within: .seconds(config.stopGraceSeconds))) {
                    cell(record, "Instance did not stop within \(config.stopGraceSeconds)s of SIGTERM; sending SIGKILL")
                    await runner.signal(record, 9, all: true)
                    _ = await waitForExit(record, within: .seconds(5))
                }
            }
            await shipLogs(only: guid)
            await runner.removeContainer(record)
        }
        emit(record, .stopped, exitStatus: runner.exit(of: record)?.status, reason: "stopped")
        instances[guid] = nil
        logReaders[guid] = nil
        samples[guid] = nil
        stopping[guid] = nil
        runner.forget(record)
        kick()
    }

    private func waitForExit(_ record: InstanceRecord, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if !runner.isRunning(record) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return !runner.isRunning(record)
    }

    // MARK: Loops

    private func monitorLoop() async {
        while !Task.isCancelled {
            await checkExits()
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Finds containers whose process ended (reported by their shim) and handles them.
    func checkExits() async {
        for (guid, record) in instances where record.startedAt != nil && !record.stopRequested {
            guard let ended = runner.exit(of: record) else {
                if !ContainerShim.shimAlive(stateDir: runner.paths(guid).shim) {
                    await handleExit(guid, status: nil, reason: "the container's shim disappeared")
                }
                continue
            }
            await handleExit(guid, status: ended.status, reason: ended.reason)
        }
    }

    private func handleExit(_ guid: String, status: Int?, reason: String) async {
        guard var record = instances[guid], record.startedAt != nil, !record.stopRequested else { return }
        lifecycles.removeValue(forKey: guid)?.cancel()
        if record.state != .crashed {
            cell(record, "Exited: \(reason)" + (status.map { " (exit status \($0))" } ?? ""))
            crash(&record, exitStatus: status, reason: reason, kind: .crashed)
        }
        await shipLogs(only: guid)
        await runner.removeContainer(record)
        record.startedAt = nil
        if var current = instances[guid] {
            current.startedAt = nil
            current.state = record.state
            current.details = record.details
            current.crashCount = record.crashCount
            current.exitStatus = record.exitStatus
            instances[guid] = current
            try? runner.persist(current)
        }
    }

    private func heartbeatLoop() async {
        guard let client else { return }
        while !Task.isCancelled {
            kicked = false
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
                    available: available(), instances: reports(), assignmentsVersion: assignmentsVersion))
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
            while !Task.isCancelled, !kicked, ContinuousClock.now < deadline {
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
                converge(to: answer.instances)
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

    private func eventLoop() async {
        guard let client else { return }
        while !Task.isCancelled {
            if !pendingEvents.isEmpty, registered {
                let batch = Array(pendingEvents.prefix(100))
                do {
                    try await client.report(agent: config.agentID, events: batch)
                    pendingEvents.removeFirst(min(batch.count, pendingEvents.count))
                    continue
                } catch {
                    logger.debug("event report failed; will retry", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func logLoop() async {
        while !Task.isCancelled {
            await shipLogs(only: nil)
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Reads new log lines of one or every instance and ships them with the agent's own lines.
    /// A reader's position moves (and is saved) only once its lines reached the CC, so a CC
    /// outage or an agent restart loses nothing the shim kept on disk.
    private func shipLogs(only: String?) async {
        var lines = only == nil ? cellLines : []
        if client == nil && only == nil { cellLines.removeAll() }
        var advanced: [String: ShimLogReader] = [:]
        for (guid, reader) in logReaders where only == nil || only == guid {
            guard let record = instances[guid], lines.count < 5000 else { continue }
            var next = reader
            guard let records = try? next.read(maxRecords: 1000), !records.isEmpty else { continue }
            for r in records {
                lines.append(LogLine(appGUID: record.assignment.appGUID, timestamp: r.timestampNanos,
                                     sourceType: r.stream == .system ? "CELL" : record.logSourceType,
                                     sourceInstance: String(record.assignment.index),
                                     messageType: r.stream == .err ? .err : .out, message: r.text))
            }
            advanced[guid] = next
        }
        guard !lines.isEmpty else { return }
        let cellCount = only == nil ? cellLines.count : 0
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
        logObserver?(lines)
        if cellCount > 0, client != nil { cellLines.removeFirst(min(cellCount, cellLines.count)) }
        for (guid, reader) in advanced where logReaders[guid] != nil {
            logReaders[guid] = reader
            if var record = instances[guid] {
                record.logPosition = reader.position
                instances[guid] = record
                try? runner.persist(record)
            }
        }
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

    // MARK: Reporting

    private func kick() { kicked = true }

    private func emit(_ record: InstanceRecord, _ kind: InstanceEvent.Kind, exitStatus: Int?, reason: String) {
        let event = InstanceEvent(instanceGUID: record.guid, processGUID: record.assignment.processGUID,
                                  appGUID: record.assignment.appGUID, index: record.assignment.index, type: kind,
                                  exitStatus: exitStatus, reason: reason, crashCount: record.crashCount,
                                  timestamp: Date().timeIntervalSince1970)
        if client != nil {
            if pendingEvents.count >= 1000 { pendingEvents.removeFirst() }
            pendingEvents.append(event)
        }
        logger.info("instance \(kind.rawValue)", metadata: ["instance": "\(record.guid)", "app": "\(record.assignment.appGUID)",
                                                          "index": "\(record.assignment.index)", "reason": "\(reason)"])
        for waiter in eventWaiters { waiter(event) }
    }

    /// A line from the agent itself (`CELL`) in the app's log.
    private func cell(_ record: InstanceRecord, _ message: String) {
        if cellLines.count >= config.logBufferLines {
            cellLines.removeFirst()
            droppedCellLines += 1
        }
        cellLines.append(LogLine(appGUID: record.assignment.appGUID, timestamp: Int64(Date().timeIntervalSince1970 * 1e9),
                                 sourceType: "CELL", sourceInstance: String(record.assignment.index), messageType: .out,
                                 message: message))
    }

    private func report(_ record: InstanceRecord) -> InstanceReport {
        let a = record.assignment
        let live = record.startedAt != nil && record.state != .crashed
        return InstanceReport(
            instanceGUID: record.guid, processGUID: a.processGUID, appGUID: a.appGUID, index: a.index, state: record.state,
            hostPort: live ? record.attachment?.hostPort : nil, containerAddress: live ? record.attachment?.containerAddress : nil,
            containerPort: record.attachment?.containerPort ?? InstanceEnvironment.port, since: record.since,
            uptimeSeconds: live ? max(0, Date().timeIntervalSince1970 - (record.startedAt ?? record.since)) : 0,
            usage: live ? (samples[record.guid]?.usage ?? InstanceUsage()) : InstanceUsage(),
            memoryQuotaBytes: Int64(a.memoryMB) << 20, diskQuotaBytes: Int64(a.diskMB) << 20,
            crashCount: record.crashCount, details: record.details)
    }

    private func available() -> AgentCapacity {
        let active = instances.values.filter { $0.state != .crashed && !$0.stopRequested }
        return AgentCapacity(memoryMB: config.capacity.memoryMB - active.reduce(0) { $0 + $1.assignment.memoryMB },
                             diskMB: config.capacity.diskMB - active.reduce(0) { $0 + $1.assignment.diskMB },
                             instances: config.capacity.instances - active.count)
    }

    /// CPU, memory and disk of every live instance; disk at most every 30 s (it walks the
    /// instance's writable layer). An instance over its disk quota is stopped as a crash.
    func sampleUsage() async {
        let reader = CgroupReader()
        for (guid, record) in instances where record.startedAt != nil && record.state != .crashed {
            let stats = try? reader.stats(cgroupPath: runner.cgroupPath(record))
            let now = ContinuousClock.now
            var sample = samples[guid] ?? UsageSample(cpuNanos: stats?.cpuUsageNanos ?? 0, at: now, usage: InstanceUsage())
            let cpuNow = stats?.cpuUsageNanos ?? sample.cpuNanos
            let elapsed = now - sample.at
            let elapsedNanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
            if elapsedNanos > 0, cpuNow >= sample.cpuNanos {
                sample.usage.cpu = Double(cpuNow - sample.cpuNanos) / elapsedNanos
            }
            sample.cpuNanos = cpuNow
            sample.at = now
            sample.usage.memoryBytes = Int64(stats?.memoryUsageBytes ?? 0)
            if sample.diskCheckedAt.map({ now - $0 > .seconds(30) }) ?? true {
                let upper = runner.paths(guid).upper
                let layer = record.dropletLayer.map { $0 + "/home/vcap" }
                sample.usage.diskBytes = (try? await threadPool.runIfActive {
                    DiskUsage.bytes(under: upper) + (layer.map { DiskUsage.bytes(under: $0) } ?? 0)
                }) ?? sample.usage.diskBytes
                sample.diskCheckedAt = now
            }
            samples[guid] = sample
            let quota = Int64(record.assignment.diskMB) << 20
            if sample.usage.diskBytes > quota, instances[guid]?.state != .crashed {
                await failHealth(guid, reason: "disk quota exceeded: \(sample.usage.diskBytes >> 20) MB used of \(record.assignment.diskMB) MB")
            }
        }
    }
}

