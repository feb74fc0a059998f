import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import PlatformClient
import PlatformModels
import Prometheus
import ServiceLifecycle

/// The health manager: takes the lease through the controller, then converges in passes.
///
/// A pass reads the controller's health snapshot (a long-poll that answers at once on a crash
/// report, an agent registering, lost or drained, a finished build or a placement change, and
/// otherwise after `pass_interval_seconds` or when a crashed instance's back-off ends), decides
/// (``Decider``, pure), hands the actions back to the controller, evaluates the alert rules,
/// stores the active set and passes what changed to the ``AlertNotifier``, whose deliveries
/// never hold a pass up.
///
/// Without the lease it stands by, asking again every third of the lease. A controller it
/// cannot reach, or that answers with an error, means desired state is unknown: it acts on
/// nothing until it reads a snapshot again. A 409 on actions or alerts means the lease moved on:
/// it stops acting at once.
public actor HealthManager {
    public let config: HealthManagerConfig
    private let client: ComponentClient
    private let logger: Logger
    private let decider: Decider
    private let rules: AlertRules
    private let notifier: AlertNotifier
    public let metrics: PrometheusCollectorRegistry

    /// Holds the lease now (as far as it knows).
    public private(set) var isActive = false
    private var leaseExpiresAt: Double?
    private var lastRenewal: ContinuousClock.Instant?
    private var lastAlertSet: [AlertDraft]?
    private var lastAlertPush: ContinuousClock.Instant?
    /// What the controller last refused of the actions and of the alert set (logged on change).
    private var refusedActions: [BatchRejection] = []
    private var refusedAlerts: [BatchRejection] = []

    public init(config: HealthManagerConfig, client: ComponentClient, logger: Logger) {
        self.config = config
        self.client = client
        self.logger = logger
        decider = Decider(configuration: config.decider)
        rules = AlertRules(configuration: config.alertRules)
        let sinks = config.alertmanagerURLs.map(AlertNotifier.Sink.alertmanager) + config.webhookURLs.map(AlertNotifier.Sink.webhook)
        notifier = AlertNotifier(sinks: sinks, resendInterval: .seconds(config.alertResendSeconds),
                                 generatorURL: config.controllerURL + "/v3/admin/alerts", logger: logger)
        metrics = PrometheusCollectorRegistry()
    }

    private var renewEvery: Duration { .milliseconds(config.leaseSeconds * 1000 / 3) }

    /// Runs until cancelled; gives the lease back on the way out so a standby takes over at once.
    public func run() async {
        logger.info("health manager starting", metadata: ["hm.id": .string(config.id), "controller": .string(config.controllerURL)])
        metrics.makeGauge(descriptor: HealthMetric.leaseHeld.descriptor, labels: []).set(Double(0))
        while !Task.isCancelled {
            if await takeLease() {
                await act()
            } else {
                try? await Task.sleep(for: renewEvery)
            }
        }
        if isActive {
            try? await client.releaseHealthLease(holder: config.id)
            isActive = false
        }
        await notifier.shutdown()
    }

    /// Asks for (or renews) the lease; true while it is ours.
    private func takeLease() async -> Bool {
        do {
            let lease = try await client.healthLease(HealthLeaseRequest(
                holder: config.id, durationSeconds: Double(config.leaseSeconds), version: PlatformVersion.current))
            lastRenewal = .now
            leaseExpiresAt = lease?.expiresAt
            let held = lease != nil
            if held != isActive {
                logger.notice(held ? "health manager lease taken: acting" : "health manager lease lost: standing by",
                              metadata: ["hm.id": .string(config.id)])
            }
            isActive = held
        } catch {
            if isActive { logger.warning("lease renewal failed", metadata: ["error": "\(error)"]) }
            // Unrenewed, the lease lapses on its own; stop acting well before that could matter.
            if let last = lastRenewal, ContinuousClock.now - last > .seconds(config.leaseSeconds) * 2 / 3 { isActive = false }
        }
        metrics.makeGauge(descriptor: HealthMetric.leaseHeld.descriptor, labels: []).set(Double(isActive ? 1 : 0))
        return isActive
    }

    /// Passes while the lease is ours.
    private func act() async {
        var version: Int?
        var wait = 0
        while !Task.isCancelled, isActive {
            if let last = lastRenewal, ContinuousClock.now - last >= renewEvery {
                guard await takeLease() else { return }
            }
            let snapshot: HealthSnapshot
            do {
                snapshot = try await client.healthState(after: version, waitSeconds: wait)
            } catch {
                // Desired state unknown: decide nothing until the controller answers again.
                metrics.makeCounter(descriptor: HealthMetric.stateFailures.descriptor, labels: []).increment()
                logger.warning("health state unavailable: nothing decided", metadata: ["error": "\(error)"])
                version = nil
                wait = 0
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            let started = ContinuousClock.now
            let plan = await pass(snapshot)
            guard isActive else { return }
            metrics.makeDurationHistogram(descriptor: HealthMetric.passDuration.descriptor, labels: [],
                                          buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50),
                                                    .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5)])
                .record(ContinuousClock.now - started)
            version = snapshot.version
            // Wake for the next event, the next due restart, the next renewal or the pass interval.
            var seconds = Double(config.passIntervalSeconds)
            if let due = plan.nextRestartAt { seconds = min(seconds, max(0, due - snapshot.asOf)) }
            if let last = lastRenewal {
                let renewIn = renewEvery - (ContinuousClock.now - last)
                seconds = min(seconds, Double(renewIn.components.seconds) + Double(renewIn.components.attoseconds) / 1e18)
            }
            wait = max(0, Int(seconds.rounded(.up)))
            if plan.nextRestartAt != nil, wait == 0 { version = nil }  // due now: re-read at once
        }
    }

    /// One decision pass over `snapshot`: actions, then alerts.
    private func pass(_ snapshot: HealthSnapshot) async -> Plan {
        let now = snapshot.asOf
        let plan = decider.decide(desired: SnapshotAdapter.desired(snapshot), actual: SnapshotAdapter.actual(snapshot), now: now)
        recordGauges(snapshot, plan: plan)
        let actions = SnapshotAdapter.actions(plan, snapshot: snapshot, decider: decider, now: now)
        let drafts = rules.evaluate(snapshot, now: now)
        await apply(actions, alerts: drafts)
        return plan
    }

    /// Sends actions and, when they changed (or every resend interval), the active alert set.
    private func apply(_ actions: [HealthAction], alerts drafts: [AlertDraft]) async {
        if !actions.isEmpty {
            for action in actions {
                metrics.makeCounter(descriptor: HealthMetric.decisions.descriptor, labels: [("kind", action.kind.rawValue)]).increment()
            }
            do {
                let answer = try await client.applyHealthActions(HealthActions(holder: config.id, actions: actions))
                logger.info("health actions", metadata: [
                    "applied": "\(answer.applied)", "skipped": "\(answer.skipped.count)",
                    "actions": .string(actions.prefix(20).map(Self.describe).joined(separator: "; "))])
                for line in answer.skipped.prefix(10) { logger.debug("health action skipped", metadata: ["why": .string(line)]) }
                noteRefused(answer.rejected, of: "health actions", previous: &refusedActions)
            } catch let failure as ComponentClient.Failure where failure.statusCode == 409 {
                lostLease()
                return
            } catch {
                logger.warning("health actions not applied", metadata: ["error": "\(error)"])
            }
        }
        let resendDue = lastAlertPush.map { ContinuousClock.now - $0 >= .seconds(config.alertResendSeconds) } ?? true
        guard drafts != lastAlertSet || resendDue else { return }
        do {
            let answer = try await client.putAlerts(HealthAlertSet(holder: config.id, alerts: drafts))
            lastAlertSet = drafts
            lastAlertPush = .now
            metrics.makeGauge(descriptor: HealthMetric.alertsActive.descriptor, labels: []).set(Double(answer.active.count))
            noteRefused(answer.rejected, of: "alerts", previous: &refusedAlerts)
            for alert in answer.resolved {
                logger.notice("alert resolved", metadata: ["alert.id": "\(alert.id)", "alert.name": .string(alert.name)])
            }
            await notifier.update(active: answer.active, resolved: answer.resolved)
        } catch let failure as ComponentClient.Failure where failure.statusCode == 409 {
            lostLease()
        } catch {
            logger.warning("alerts not stored", metadata: ["error": "\(error)"])
        }
    }

    private func lostLease() {
        guard isActive else { return }
        isActive = false
        lastAlertSet = nil
        metrics.makeGauge(descriptor: HealthMetric.leaseHeld.descriptor, labels: []).set(Double(0))
        logger.notice("health manager lease lost: standing by", metadata: ["hm.id": .string(config.id)])
    }

    /// Logs what the controller refused when it differs from last time: the same items come
    /// back refused on every push, and the controller logs each one itself.
    private func noteRefused(_ rejected: [BatchRejection]?, of what: String, previous: inout [BatchRejection]) {
        let rejected = rejected ?? []
        guard rejected != previous else { return }
        previous = rejected
        guard !rejected.isEmpty else { return }
        logger.warning("the controller refused \(what)", metadata: [
            "refused": "\(rejected.count)",
            "reasons": .string(rejected.prefix(5).map { "[\($0.index)] \($0.reason)" }.joined(separator: "; ")),
        ])
    }

    private func recordGauges(_ snapshot: HealthSnapshot, plan: Plan) {
        var counts: [String: Int] = [:]
        for state in InstanceState.allCases { counts[state.rawValue] = 0 }
        counts["UNPLACED"] = 0
        for instance in snapshot.instances {
            counts[instance.agentID == nil ? "UNPLACED" : instance.state.rawValue, default: 0] += 1
        }
        for (state, count) in counts {
            metrics.makeGauge(descriptor: HealthMetric.instances.descriptor, labels: [("state", state)]).set(Double(count))
        }
        metrics.makeCounter(descriptor: HealthMetric.passes.descriptor, labels: []).increment()
    }

    static func describe(_ action: HealthAction) -> String {
        var text = "\(action.kind.rawValue) \(action.process.prefix(8))/\(action.index)"
        if let agent = action.agent { text += " on \(agent)" }
        if let reason = action.reason { text += " (\(reason))" }
        return text
    }
}

/// Runs a ``HealthManager`` and its `/metrics` + `/healthz` endpoint as a ServiceLifecycle service.
public struct HealthManagerService: Service {
    public let manager: HealthManager
    private let client: ComponentClient
    private let logger: Logger

    public init(config: HealthManagerConfig, logger: Logger) {
        let client = ComponentClient(api: config.controllerURL, credential: config.internalCredential, component: "health-manager")
        self.client = client
        self.logger = logger
        manager = HealthManager(config: config, client: client, logger: logger)
    }

    public func run() async throws {
        let config = manager.config
        let router = Router()
        let manager = self.manager
        router.get("/healthz") { _, _ -> Response in
            let active = await manager.isActive
            let body = "{\"status\":\"ok\",\"role\":\"\(active ? "active" : "standby")\"}"
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            manager.metrics.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        var appLogger = logger
        appLogger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname(config.listenHost, port: config.listenPort)),
                              logger: appLogger)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await app.runService() }
            group.addTask { await cancelWhenGracefulShutdown { await manager.run() } }
        }
        try? await client.shutdown()
    }
}
