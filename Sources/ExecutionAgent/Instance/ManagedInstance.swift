import Containers
import Foundation
import Logging
import PlatformModels

/// One instance on this host: the only owner of its record, lifecycle, health checks, log
/// position, usage sample and stop. The agent holds a map of these and runs the loops.
///
/// Every state change is saved with ``save()``, whose failure is reported (error log and a
/// `CELL` line), never dropped: adoption after an agent restart depends on the record.
/// Methods re-check the state after each suspension, since a stop or an exit may have
/// arrived meanwhile.
actor ManagedInstance {
    nonisolated let guid: String
    private(set) var record: InstanceRecord
    private let runtime: any InstanceRuntime
    private let outbox: AgentOutbox
    private let slots: StartSlots
    private let policy: InstancePolicy
    private let logger: Logger
    private var lifecycle: Task<Void, Never>?
    private var stopping: Task<Void, Never>?
    private var logReader: ShimLogReader
    private var sample: UsageSample?
    /// How the container ended when it was stopped (for the stopped event).
    private var stoppedStatus: Int?
    /// Record writes that failed (shown in tests; each was reported when it happened).
    private(set) var persistFailures = 0

    struct UsageSample {
        var cpuNanos: UInt64
        var at: ContinuousClock.Instant
        var usage: InstanceUsage
        var diskCheckedAt: ContinuousClock.Instant?
    }

    init(record: InstanceRecord, runtime: any InstanceRuntime, outbox: AgentOutbox, slots: StartSlots,
         policy: InstancePolicy, logger: Logger) {
        self.guid = record.guid
        self.record = record
        self.runtime = runtime
        self.outbox = outbox
        self.slots = slots
        self.policy = policy
        self.logger = logger
        self.logReader = ShimLogReader(stateDir: runtime.logDirectory(of: record.guid), position: record.logPosition)
    }

    // MARK: Entry points

    /// A new instance: records it, then starts its container and watches its health.
    func launch() {
        guard save() else {
            crash(exitStatus: nil, reason: "failed to start: cannot save the instance record", kind: .failed)
            return
        }
        lifecycle = Task { await self.startAndWatch() }
    }

    /// An instance whose container outlived the previous agent: its health is watched again.
    func adopt() {
        lifecycle = Task { await self.watchHealth(adopted: true) }
    }

    /// An instance whose container ended while no agent ran: reported as crashed unless it
    /// was being stopped; its container is removed either way.
    func settleLost() async {
        let wasLive = record.startedAt != nil && record.state != .crashed
        if wasLive && !record.stopRequested {
            let ended = runtime.exit(of: record)
            crash(exitStatus: ended?.status, reason: ended?.reason ?? "container lost while the agent was not running", kind: .crashed)
        }
        await runtime.removeContainer(record)
        record.attachment = nil
        record.startedAt = nil
        if !record.stopRequested { _ = save() }
    }

    /// Stops the instance (idempotent); returns when its container is gone. The caller then
    /// ships its last lines, forgets it and calls ``announceStopped()``.
    func stop() async {
        await beginStop().value
    }

    /// Cancels the lifecycle (agent shutdown): the container keeps running for the next agent.
    func detach() {
        lifecycle?.cancel()
    }

    // MARK: Views

    /// The instance as the CC sees it in a heartbeat.
    func report() -> InstanceReport {
        let a = record.assignment
        let live = record.startedAt != nil && record.state != .crashed
        return InstanceReport(
            instanceGUID: record.guid, processGUID: a.processGUID, appGUID: a.appGUID, index: a.index, state: record.state,
            hostPort: live ? record.attachment?.hostPort : nil, containerAddress: live ? record.attachment?.containerAddress : nil,
            containerPort: record.attachment?.containerPort ?? InstanceEnvironment.port, since: record.since,
            uptimeSeconds: live ? max(0, Date().timeIntervalSince1970 - (record.startedAt ?? record.since)) : 0,
            usage: live ? (sample?.usage ?? InstanceUsage()) : InstanceUsage(),
            memoryQuotaBytes: Int64(a.memoryMB) << 20, diskQuotaBytes: Int64(a.diskMB) << 20,
            // A record an older agent saved may hold raw text.
            crashCount: record.crashCount, details: record.details.map { UntrustedText.clean($0, as: .reason) })
    }

    /// The memory and disk the instance holds, or nil when it holds none (crashed, or being stopped).
    var heldCapacity: (memoryMB: Int, diskMB: Int)? {
        guard record.state != .crashed, !record.stopRequested else { return nil }
        return (record.assignment.memoryMB, record.assignment.diskMB)
    }

    // MARK: Exits

    /// Reacts to the container's end (as its shim recorded it) or to a vanished shim.
    func checkExit() async {
        guard record.startedAt != nil, !record.stopRequested else { return }
        if let ended = runtime.exit(of: record) {
            await handleExit(status: ended.status, reason: ended.reason)
        } else if !runtime.shimAlive(record) {
            await handleExit(status: nil, reason: "the container's shim disappeared")
        }
    }

    private func handleExit(status: Int?, reason: String) async {
        lifecycle?.cancel()
        lifecycle = nil
        if record.state != .crashed {
            outbox.cell(record.assignment, "Exited: \(reason)" + (status.map { " (exit status \($0))" } ?? ""))
            crash(exitStatus: status, reason: reason, kind: .crashed)
        }
        let snapshot = record
        await runtime.removeContainer(snapshot)
        // A stop may have come while the container was removed: it finds no container.
        record.startedAt = nil
        _ = save()
    }

    // MARK: Starting

    private func startAndWatch() async {
        outbox.cell(record.assignment, "Creating container for app instance \(record.assignment.index)")
        let initial = record
        let runtime = self.runtime
        let started: InstanceRecord
        do {
            started = try await slots.withSlot(timeout: policy.slotTimeout) {
                try Task.checkCancellation()
                let layer = try await runtime.layer(for: initial.assignment.droplet)
                try Task.checkCancellation()
                return try await runtime.start(initial, layer: layer)
            }
        } catch {
            guard !record.stopRequested else { return }
            let words = error is CancellationError ? "start cancelled" : "\(error)"
            logger.error("instance failed to start", metadata: ["instance": "\(guid)", "error": "\(words)"])
            outbox.cell(record.assignment, "Failed to create container: \(words)")
            crash(exitStatus: nil, reason: "failed to start: \(words)", kind: .failed)
            _ = save()
            return
        }
        record.attachment = started.attachment
        record.dropletLayer = started.dropletLayer
        record.startedAt = started.startedAt
        record.assignment = started.assignment
        _ = save()
        outbox.cell(record.assignment, "Container became running (health check: \(record.assignment.healthCheck.type.rawValue))")
        if record.stopRequested || Task.isCancelled { return }
        await watchHealth(adopted: false)
    }

    // MARK: Health

    /// Start checks every interval until healthy or the start timeout; then liveness checks.
    private func watchHealth(adopted: Bool) async {
        guard let address = record.attachment?.containerAddress else { return }
        let spec = record.assignment.healthCheck
        let port = record.attachment?.containerPort ?? InstanceEnvironment.port
        if !(adopted && record.state == .running) {
            guard await awaitHealthy(spec, address: address, port: port) else { return }
        }
        guard spec.type != .process else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: policy.livenessInterval)
            guard !Task.isCancelled, record.state == .running, !record.stopRequested else { return }
            let outcome = await runtime.probe(spec, address: address, port: port)
            guard !Task.isCancelled, record.state == .running, !record.stopRequested else { return }
            if case .unhealthy(let words) = outcome {
                await failHealth(reason: "Instance became unhealthy: \(words)")
                return
            }
        }
    }

    /// Whether the instance became healthy before its start timeout (it was failed if not).
    private func awaitHealthy(_ spec: HealthCheckSpec, address: String, port: Int) async -> Bool {
        let timeout = min(max(spec.timeoutSeconds, 1), 600)
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            guard !Task.isCancelled, record.state == .starting, !record.stopRequested else { return false }
            let last = await runtime.probe(spec, address: address, port: port)
            guard !Task.isCancelled, record.state == .starting, !record.stopRequested else { return false }
            if last == .healthy {
                record.state = .running
                record.since = Date().timeIntervalSince1970
                record.details = nil
                _ = save()
                outbox.cell(record.assignment, "Container became healthy")
                emit(.running, exitStatus: nil, reason: "healthy")
                return true
            }
            if ContinuousClock.now >= deadline {
                let why: String
                if case .unhealthy(let words) = last { why = words } else { why = "unknown" }
                await failHealth(reason: "Instance never healthy after \(timeout)s: \(why)")
                return false
            }
            try? await Task.sleep(for: policy.startCheckInterval)
        }
    }

    /// A failed check crashes the instance, unless its process just ended: an OOM kill or a
    /// crash fails the check a moment before the shim records the exit, and the exit should
    /// speak with its real status.
    func failHealth(reason: String) async {
        let deadline = ContinuousClock.now + policy.exitGrace
        while ContinuousClock.now < deadline {
            if runtime.exit(of: record) != nil || !runtime.shimAlive(record) { return }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard record.state != .crashed, !record.stopRequested else { return }
        outbox.cell(record.assignment, reason)
        crash(exitStatus: nil, reason: reason, kind: .crashed)
        _ = save()
        await runtime.signal(record, 9, all: true)
    }

    // MARK: Stopping

    private func beginStop() -> Task<Void, Never> {
        if let stopping { return stopping }
        let task = Task { await self.performStop() }
        stopping = task
        return task
    }

    private func performStop() async {
        record.stopRequested = true
        if record.state != .crashed { record.state = .stopping }
        record.since = Date().timeIntervalSince1970
        _ = save()
        outbox.kick()
        if let task = lifecycle {
            lifecycle = nil
            task.cancel()
            await task.value
        }
        if record.startedAt != nil {
            if runtime.isRunning(record) {
                outbox.cell(record.assignment, "Stopping app instance \(record.assignment.index)")
                await runtime.signal(record, 15, all: false)
                if !(await waitForExit(within: policy.stopGrace)) {
                    outbox.cell(record.assignment, "Instance did not stop within \(policy.stopGrace) of SIGTERM; sending SIGKILL")
                    await runtime.signal(record, 9, all: true)
                    _ = await waitForExit(within: .seconds(5))
                }
            }
            await runtime.removeContainer(record)
        }
        stoppedStatus = runtime.exit(of: record)?.status
    }

    /// Emits the stopped event; the agent calls it once the instance left its map, so whoever
    /// hears of the stop finds it gone.
    func announceStopped() {
        emit(.stopped, exitStatus: stoppedStatus, reason: "stopped")
    }

    private func waitForExit(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if !runtime.isRunning(record) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return !runtime.isRunning(record)
    }

    // MARK: Logs

    /// The next lines of the container's log, without moving the saved position.
    func readLogs(max: Int) -> (lines: [LogLine], next: ShimLogReader)? {
        var next = logReader
        guard let records = try? next.read(maxRecords: max), !records.isEmpty else { return nil }
        let lines = records.map { r in
            LogLine(appGUID: record.assignment.appGUID, timestamp: r.timestampNanos,
                    sourceType: r.stream == .system ? "CELL" : record.logSourceType,
                    sourceInstance: String(record.assignment.index),
                    messageType: r.stream == .err ? .err : .out, message: UntrustedText.clean(r.text, as: .logMessage))
        }
        return (lines, next)
    }

    /// Moves (and saves) the log position once the lines reached the controller.
    func commitLogs(_ reader: ShimLogReader) {
        logReader = reader
        record.logPosition = reader.position
        if stopping == nil { _ = save() }
    }

    // MARK: Usage

    /// CPU and memory now; disk at most every 30 s (it walks the writable layer). An
    /// instance over its disk quota is failed as a crash.
    func sampleUsage() async {
        guard record.startedAt != nil, record.state != .crashed else { return }
        let stats = runtime.counters(of: record)
        let now = ContinuousClock.now
        var next = sample ?? UsageSample(cpuNanos: stats?.cpuUsageNanos ?? 0, at: now, usage: InstanceUsage())
        let cpuNow = stats?.cpuUsageNanos ?? next.cpuNanos
        let elapsed = now - next.at
        let elapsedNanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        if elapsedNanos > 0, cpuNow >= next.cpuNanos {
            next.usage.cpu = Double(cpuNow - next.cpuNanos) / elapsedNanos
        }
        next.cpuNanos = cpuNow
        next.at = now
        next.usage.memoryBytes = Int64(stats?.memoryUsageBytes ?? 0)
        if next.diskCheckedAt.map({ now - $0 > .seconds(30) }) ?? true {
            next.usage.diskBytes = await runtime.diskBytes(of: record) ?? next.usage.diskBytes
            next.diskCheckedAt = now
        }
        guard record.state != .crashed else { return }
        sample = next
        let quota = Int64(record.assignment.diskMB) << 20
        if next.usage.diskBytes > quota {
            await failHealth(reason: "disk quota exceeded: \(next.usage.diskBytes >> 20) MB used of \(record.assignment.diskMB) MB")
        }
    }

    // MARK: Record and events

    /// Writes the record; a failure is reported where operators and the app's developers see
    /// it (the agent's log and a CELL line), and counted.
    @discardableResult
    private func save() -> Bool {
        do {
            try runtime.persist(record)
            return true
        } catch {
            persistFailures += 1
            logger.error("cannot save instance record: a restarted agent could not adopt this instance",
                         metadata: ["instance": "\(guid)", "error": "\(error)"])
            outbox.cell(record.assignment, "Cannot save the instance's record on this host: \(error)")
            return false
        }
    }

    /// Marks a crash, emits its event and asks for an early heartbeat.
    private func crash(exitStatus: Int?, reason raw: String, kind: InstanceEvent.Kind) {
        // Reasons quote the app's and runc's words: cleaned once here for the record and the event.
        let reason = UntrustedText.clean(raw, as: .reason)
        record.state = .crashed
        record.crashCount += 1
        record.since = Date().timeIntervalSince1970
        record.details = reason
        record.exitStatus = exitStatus
        sample = nil
        emit(kind, exitStatus: exitStatus, reason: reason)
    }

    private func emit(_ kind: InstanceEvent.Kind, exitStatus: Int?, reason: String) {
        let event = InstanceEvent(instanceGUID: record.guid, processGUID: record.assignment.processGUID,
                                  appGUID: record.assignment.appGUID, index: record.assignment.index, type: kind,
                                  exitStatus: exitStatus, reason: UntrustedText.clean(reason, as: .reason), crashCount: record.crashCount,
                                  timestamp: Date().timeIntervalSince1970)
        logger.info("instance \(kind.rawValue)", metadata: ["instance": "\(record.guid)", "app": "\(record.assignment.appGUID)",
                                                          "index": "\(record.assignment.index)", "reason": "\(reason)"])
        outbox.emit(event)
    }
}

/// The timings an instance follows, from the agent's configuration.
struct InstancePolicy: Sendable {
    var stopGrace: Duration
    var startCheckInterval: Duration
    var livenessInterval: Duration
    /// How long a failed check waits for the process's own exit to be recorded.
    var exitGrace: Duration = .milliseconds(1500)
    /// How long a start waits for a free slot before it fails.
    var slotTimeout: Duration = .seconds(600)

    init(config: AgentConfig) {
        stopGrace = .seconds(config.stopGraceSeconds)
        startCheckInterval = .milliseconds(Int(config.startCheckIntervalSeconds * 1000))
        livenessInterval = .seconds(config.livenessIntervalSeconds)
    }
}
