import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import NIOFoundationCompat
import PlatformModels

/// Delivers alerts to Alertmanager and to webhooks, in the background, so the decision loop
/// never waits on a receiver that is slow or down.
///
/// ``update(active:resolved:)`` only records the newest state and returns; one task per sink
/// delivers it:
/// - **Alertmanager** (API v2): `POST <base>/api/v2/alerts` with every active alert, again every
///   `resendInterval`, each with `endsAt` = now + 4 × `resendInterval`, so Alertmanager lets an
///   alert expire by itself if we stop sending (crash, lost lease). A resolved alert is sent
///   with its real `endsAt` until one delivery has succeeded.
/// - **Webhook**: one `POST` per change, `{"status": "firing"|"resolved", "alert": {...}}`, when
///   an alert starts and when it is resolved; nothing while it stays unchanged.
///
/// A failed delivery (no connection, timeout, non-2xx) is retried after 1 s, doubling up to 60 s.
/// One attempt may take up to 10 s: within it the HTTP client itself keeps retrying a refused
/// connection, so a receiver that comes back is reached without waiting for the next back-off.
/// Retries always carry the newest state: an alert resolved while its firing delivery was still
/// failing is sent resolved only. An alert that leaves the active set without being listed as
/// resolved counts as resolved at that moment.
///
/// Webhook URLs may carry a token in their query, so logs name sinks only by scheme, host and
/// port. Each attempt counts in `cflike_health_alert_deliveries_total{sink, outcome}`.
/// Call ``shutdown()`` when done: it stops the tasks and closes the HTTP client if it is ours.
public actor AlertNotifier {
    /// Where alerts go.
    public enum Sink: Sendable, Equatable, CustomStringConvertible {
        /// An Alertmanager's base URL (e.g. `http://127.0.0.1:9093`).
        case alertmanager(URL)
        /// A URL that receives one JSON document per change.
        case webhook(URL)

        /// `alertmanager` or `webhook`: the metrics' `sink` dimension.
        public var kind: String {
            switch self {
            case .alertmanager: "alertmanager"
            case .webhook: "webhook"
            }
        }

        public var url: URL {
            switch self {
            case .alertmanager(let url), .webhook(let url): url
            }
        }

        /// Kind and `scheme://host:port`: safe to log.
        public var description: String { "\(kind) \(AlertNotifier.address(url))" }
    }

    /// The newest state of one alert that a sink has not yet received.
    struct Change: Sendable {
        var record: AlertRecord
        var firing: Bool
        /// Increases with every change, so a delivery only settles the state it carried.
        var serial: Int
    }

    /// One sink's undelivered changes and its delivery task's wait.
    struct Channel {
        let sink: Sink
        /// By fingerprint: the newest change replaces an older one still waiting.
        var pending: [String: Change] = [:]
        /// A wake-up came while the task was not waiting for one.
        var woken = false
        var waiter: Waiter?
    }

    struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Void, Never>
        /// False for back-off waits: new changes do not cut them short.
        var wakeable: Bool
        var timer: Task<Void, Never>?
    }

    /// What one delivery attempt sends, and which changes it settles when it succeeds.
    struct Delivery: Sendable {
        var url: URL
        var body: Data
        var settles: [String: Int]
        /// For logs: which alerts, never the URL.
        var what: String
    }

    public let resendInterval: Duration
    public let generatorURL: String
    private let logger: Logger
    private let client: HTTPClient
    private let ownsClient: Bool
    private var channels: [Channel]
    /// The active alerts as last updated, by fingerprint.
    private var active: [String: AlertRecord] = [:]
    private var serial = 0
    private var waitSerial = 0
    private var workers: [Task<Void, Never>] = []
    private var stopped = false

    /// Longest wait between retries of a failing sink, in seconds.
    static let maxBackoff: Double = 60
    /// How long one delivery may take.
    static let requestTimeout: TimeAmount = .seconds(10)
    static let metricLabel = "cflike_health_alert_deliveries_total"

    /// - Parameters:
    ///   - generatorURL: sent with every Alertmanager alert: where to look at it (e.g. the controller's admin page).
    ///   - httpClient: used as is and left open; without one the notifier makes its own and ``shutdown()`` closes it.
    public init(sinks: [Sink], resendInterval: Duration = .seconds(30), generatorURL: String, logger: Logger,
                httpClient: HTTPClient? = nil) {
        self.resendInterval = resendInterval
        self.generatorURL = generatorURL
        self.logger = logger
        if let httpClient {
            client = httpClient
            ownsClient = false
        } else {
            client = HTTPClient(eventLoopGroupProvider: .singleton)
            ownsClient = true
        }
        channels = sinks.map { Channel(sink: $0) }
    }

    /// Records the newest alert state and returns at once; the sinks' tasks deliver it.
    ///
    /// - Parameters:
    ///   - active: every alert active now (replaces the previous set).
    ///   - resolved: the alerts resolved since the last update.
    public func update(active newActive: [AlertRecord], resolved: [AlertRecord]) {
        guard !stopped else { return }
        let now = Date().timeIntervalSince1970
        var next: [String: AlertRecord] = [:]
        for record in newActive { next[record.fingerprint] = record }

        var changes: [(record: AlertRecord, firing: Bool)] = []
        let listed = Set(resolved.map(\.fingerprint))
        for record in resolved.sorted(by: { $0.id < $1.id }) where next[record.fingerprint] == nil {
            changes.append((record, false))
        }
        for (fingerprint, old) in active.sorted(by: { $0.key < $1.key })
        where next[fingerprint] == nil && !listed.contains(fingerprint) {
            var record = old
            record.state = "resolved"
            record.endsAt = now
            changes.append((record, false))
        }
        // New alerts, and alerts that started again since (a new record for the same labels).
        for record in next.values.sorted(by: { $0.id < $1.id }) where active[record.fingerprint]?.id != record.id {
            changes.append((record, true))
        }
        active = next

        for index in channels.indices {
            for change in changes {
                serial += 1
                channels[index].pending[change.record.fingerprint] = Change(record: change.record, firing: change.firing,
                                                                            serial: serial)
            }
            if !changes.isEmpty { wake(index) }
        }
        if workers.isEmpty {
            workers = channels.indices.map { index in Task { await self.deliver(index) } }
        }
    }

    /// Changes not yet delivered, summed over all sinks (an Alertmanager's periodic re-sends do
    /// not count once the newest state has arrived).
    public func pendingDeliveries() -> Int {
        channels.reduce(0) { $0 + $1.pending.count }
    }

    /// Stops delivering (what has not arrived yet is dropped) and closes the HTTP client if it is ours.
    public func shutdown() async {
        guard !stopped else { return }
        stopped = true
        for index in channels.indices { resume(index, id: channels[index].waiter?.id) }
        for worker in workers { worker.cancel() }
        for worker in workers { await worker.value }
        workers = []
        if ownsClient {
            do {
                try await client.shutdown()
            } catch {
                logger.warning("closing the alert notifier's HTTP client failed", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Delivery

    /// One sink's task: send what is due, wait, retry with back-off on failure.
    private func deliver(_ index: Int) async {
        let sink = channels[index].sink
        var backoff = 1.0
        var failing = false
        while !stopped {
            guard let delivery = nextDelivery(index) else {
                await wait(index, seconds: nil, wakeable: true)
                continue
            }
            let outcome = await post(delivery)
            Counter(label: Self.metricLabel, dimensions: [("sink", sink.kind), ("outcome", outcome == nil ? "ok" : "failed")])
                .increment()
            if stopped { return }
            if let outcome {
                let level: Logger.Level = failing ? .debug : .warning
                logger.log(level: level, "delivering alerts failed; will retry", metadata: [
                    "sink": "\(sink)", "alerts": "\(delivery.what)", "error": "\(outcome)", "retry_in_s": "\(backoff)",
                ])
                failing = true
                await wait(index, seconds: backoff, wakeable: false)
                backoff = min(backoff * 2, Self.maxBackoff)
                continue
            }
            if failing { logger.info("delivering alerts works again", metadata: ["sink": "\(sink)"]) }
            failing = false
            backoff = 1
            settle(index, delivery.settles)
            if case .alertmanager = sink { await wait(index, seconds: Self.seconds(resendInterval), wakeable: true) }
        }
    }

    /// The next attempt for sink `index`, nil when it has nothing to send.
    private func nextDelivery(_ index: Int) -> Delivery? {
        let channel = channels[index]
        switch channel.sink {
        case .alertmanager(let base):
            let now = Date()
            let until = now.addingTimeInterval(4 * Self.seconds(resendInterval))
            var alerts = active.values.sorted { $0.fingerprint < $1.fingerprint }.map { record in
                AlertmanagerAlert(record, endsAt: until, generatorURL: generatorURL)
            }
            let resolving = channel.pending.values.filter { !$0.firing && active[$0.record.fingerprint] == nil }
            for change in resolving.sorted(by: { $0.serial < $1.serial }) {
                let endsAt = change.record.endsAt.map { Date(timeIntervalSince1970: $0) } ?? now
                alerts.append(AlertmanagerAlert(change.record, endsAt: endsAt, generatorURL: generatorURL))
            }
            guard !alerts.isEmpty, let body = try? Self.encoder.encode(alerts) else { return nil }
            return Delivery(url: Self.alertsEndpoint(base), body: body, settles: channel.pending.mapValues(\.serial),
                            what: "\(alerts.count - resolving.count) active, \(resolving.count) resolved")
        case .webhook(let url):
            guard let change = channel.pending.values.min(by: { $0.serial < $1.serial }),
                  let body = try? Self.encoder.encode(WebhookMessage(change)) else { return nil }
            return Delivery(url: url, body: body, settles: [change.record.fingerprint: change.serial],
                            what: "\(change.record.name) \(change.firing ? "firing" : "resolved")")
        }
    }

    /// Forgets the changes a successful delivery carried, unless newer ones replaced them meanwhile.
    private func settle(_ index: Int, _ settles: [String: Int]) {
        for (fingerprint, serial) in settles where channels[index].pending[fingerprint]?.serial == serial {
            channels[index].pending[fingerprint] = nil
        }
    }

    /// nil when delivered (2xx), else what went wrong.
    private func post(_ delivery: Delivery) async -> String? {
        var request = HTTPClientRequest(url: delivery.url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "cf-like-health-manager")
        request.body = .bytes(ByteBuffer(data: delivery.body))
        do {
            let response = try await client.execute(request, timeout: Self.requestTimeout)
            _ = try? await response.body.collect(upTo: 1 << 20)
            guard (200..<300).contains(response.status.code) else { return "HTTP \(response.status.code)" }
            return nil
        } catch {
            return "\(error)"
        }
    }

    // MARK: Waiting

    /// Sleeps until `seconds` passed (nil: no limit), a change arrives (when `wakeable`) or shutdown.
    private func wait(_ index: Int, seconds: Double?, wakeable: Bool) async {
        guard !stopped else { return }
        if wakeable, channels[index].woken {
            channels[index].woken = false
            return
        }
        waitSerial += 1
        let id = waitSerial
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            var waiter = Waiter(id: id, continuation: continuation, wakeable: wakeable)
            if let seconds {
                waiter.timer = Task {
                    try? await Task.sleep(for: .seconds(seconds))
                    self.resume(index, id: id)
                }
            }
            channels[index].waiter = waiter
        }
        if wakeable { channels[index].woken = false }
    }

    /// New changes for sink `index`: cut its wait short, or have its next wait return at once.
    private func wake(_ index: Int) {
        if let waiter = channels[index].waiter, waiter.wakeable {
            resume(index, id: waiter.id)
        } else {
            channels[index].woken = true
        }
    }

    private func resume(_ index: Int, id: Int?) {
        guard let waiter = channels[index].waiter, waiter.id == id else { return }
        channels[index].waiter = nil
        waiter.timer?.cancel()
        waiter.continuation.resume()
    }

    // MARK: Wire formats

    /// One element of Alertmanager's `POST /api/v2/alerts` body.
    struct AlertmanagerAlert: Encodable {
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
        var endsAt: String
        var generatorURL: String

        init(_ record: AlertRecord, endsAt: Date, generatorURL: String) {
            let startsAt = Date(timeIntervalSince1970: record.startsAt)
            labels = record.labels
            annotations = record.annotations
            self.startsAt = AlertNotifier.timestamp(startsAt)
            // Alertmanager rejects an alert that ends before it starts.
            self.endsAt = AlertNotifier.timestamp(max(endsAt, startsAt))
            self.generatorURL = generatorURL
        }
    }

    /// The webhook's body.
    struct WebhookMessage: Encodable {
        struct Alert: Encodable {
            var id: Int
            var labels: [String: String]
            var annotations: [String: String]
            var startsAt: String
            var endsAt: String?
            var fingerprint: String

            enum CodingKeys: String, CodingKey {
                case id, labels, annotations, startsAt = "starts_at", endsAt = "ends_at", fingerprint
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
                try container.encode(labels, forKey: .labels)
                try container.encode(annotations, forKey: .annotations)
                try container.encode(startsAt, forKey: .startsAt)
                try container.encode(endsAt, forKey: .endsAt)  // null while firing
                try container.encode(fingerprint, forKey: .fingerprint)
            }
        }

        var status: String
        var alert: Alert

        init(_ change: Change) {
            let record = change.record
            status = change.firing ? "firing" : "resolved"
            let endsAt = change.firing ? nil : (record.endsAt ?? Date().timeIntervalSince1970)
            alert = Alert(id: record.id, labels: record.labels, annotations: record.annotations,
                          startsAt: AlertNotifier.timestamp(Date(timeIntervalSince1970: record.startsAt)),
                          endsAt: endsAt.map { AlertNotifier.timestamp(Date(timeIntervalSince1970: $0)) },
                          fingerprint: record.fingerprint)
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// RFC 3339 in UTC with milliseconds, e.g. `2025-01-02T03:04:05.678Z`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// `<base>/api/v2/alerts`, keeping any path prefix the base has.
    static func alertsEndpoint(_ base: URL) -> URL {
        guard var components = URLComponents(url: base, resolvingAgainstBaseURL: false) else { return base }
        var path = components.path
        while path.hasSuffix("/") { path.removeLast() }
        components.path = path + "/api/v2/alerts"
        return components.url ?? base
    }

    /// `scheme://host:port`: what may be logged of a URL (its path or query may hold a token).
    public nonisolated static func address(_ url: URL) -> String {
        let scheme = url.scheme ?? "http"
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(url.host ?? "?"):\(port)"
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
