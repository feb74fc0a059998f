import AsyncHTTPClient
import Foundation
import HealthManager
import Hummingbird
import Logging
import NIOCore
import PlatformModels
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The notifier against a real Alertmanager (`/usr/bin/prometheus-alertmanager`) and against an
/// in-process webhook receiver.
@Suite(.serialized) struct AlertNotifierTests {
    let logger = Logger(label: "HealthManagerTests")

    func record(id: Int = 1, name: String = "InstanceCrashLoop", state: String = "active", endsAt: Double? = nil,
                crashes: Int = 3) -> AlertRecord {
        AlertRecord(id: id, state: state,
                    labels: ["alertname": name, "severity": "critical", "app_guid": "app-1", "app_name": "shop",
                             "process_type": "web"],
                    annotations: ["summary": "App shop (process web) keeps crashing",
                                  "description": "Instance 0 crashed \(crashes) times", "crash_count": "\(crashes)"],
                    startsAt: Date().timeIntervalSince1970 - 5, endsAt: endsAt, fingerprint: "fp-\(name)-\(id)")
    }

    func resolvedRecord(_ active: AlertRecord) -> AlertRecord {
        var resolved = active
        resolved.state = "resolved"
        resolved.endsAt = Date().timeIntervalSince1970
        return resolved
    }

    // MARK: Alertmanager

    @Test(.timeLimit(.minutes(1))) func aFiringAlertAppearsInAlertmanager() async throws {
        try await withAlertmanager { alertmanager in
            let notifier = AlertNotifier(sinks: [.alertmanager(alertmanager.url)], generatorURL: "http://cc.example/admin",
                                         logger: logger)
            let alert = record()
            await notifier.update(active: [alert], resolved: [])
            let found = try await eventually("the alert shows in Alertmanager") {
                try await alertmanager.alerts().first { $0.labels == alert.labels }
            }
            #expect(found.annotations == alert.annotations)
            #expect(found.state == "active")
            #expect(found.generatorURL == "http://cc.example/admin")
            _ = try await eventually("nothing left to deliver") { await notifier.pendingDeliveries() == 0 ? true : nil }
            await notifier.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(1))) func aResolvedAlertStopsBeingActive() async throws {
        try await withAlertmanager { alertmanager in
            let notifier = AlertNotifier(sinks: [.alertmanager(alertmanager.url)], generatorURL: "http://cc.example/admin",
                                         logger: logger)
            let alert = record()
            await notifier.update(active: [alert], resolved: [])
            _ = try await eventually("the alert shows in Alertmanager") {
                try await alertmanager.alerts().first { $0.labels == alert.labels }
            }
            await notifier.update(active: [], resolved: [resolvedRecord(alert)])
            _ = try await eventually("the alert is no longer active") {
                let active = try await alertmanager.alerts(query: "?active=true&silenced=false&inhibited=false")
                return active.contains { $0.labels == alert.labels && $0.state == "active" } ? nil : true
            }
            _ = try await eventually("nothing left to deliver") { await notifier.pendingDeliveries() == 0 ? true : nil }
            await notifier.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(1))) func deliveryIsRetriedUntilAlertmanagerIsThere() async throws {
        let port = try freePort()
        let notifier = AlertNotifier(sinks: [.alertmanager(URL(string: "http://127.0.0.1:\(port)")!)],
                                     generatorURL: "http://cc.example/admin", logger: logger)
        let alert = record()
        await notifier.update(active: [alert], resolved: [])
        try await Task.sleep(for: .milliseconds(1500))
        #expect(await notifier.pendingDeliveries() == 1)
        try await withAlertmanager(port: port) { alertmanager in
            _ = try await eventually("the alert arrives once Alertmanager listens", within: .seconds(20)) {
                try await alertmanager.alerts().first { $0.labels == alert.labels }
            }
            _ = try await eventually("nothing left to deliver") { await notifier.pendingDeliveries() == 0 ? true : nil }
        }
        await notifier.shutdown()
    }

    @Test(.timeLimit(.minutes(1))) func updateReturnsAtOnceWhileSinksAreDown() async throws {
        let port = try freePort()
        let notifier = AlertNotifier(
            sinks: [.alertmanager(URL(string: "http://127.0.0.1:\(port)")!),
                    .webhook(URL(string: "http://127.0.0.1:\(port)/hook?token=secret")!)],
            generatorURL: "http://cc.example/admin", logger: logger)
        let clock = ContinuousClock()
        // A delivery attempt may take 10 s; an update that waited for one would take at least
        // that long, so 5 s leaves a loaded machine room while still telling the two apart.
        var alerts: [AlertRecord] = []
        for id in 1...20 {
            alerts.append(record(id: id, name: "Alert\(id)"))
            let took = await clock.measure { await notifier.update(active: alerts, resolved: []) }
            #expect(took < .seconds(5))
        }
        try await Task.sleep(for: .milliseconds(300))
        // 20 alerts wait for each sink.
        #expect(await notifier.pendingDeliveries() == 40)
        let took = await clock.measure { await notifier.update(active: [], resolved: alerts.map(resolvedRecord)) }
        #expect(took < .seconds(5))
        // The newest state replaced the firing ones.
        #expect(await notifier.pendingDeliveries() == 40)
        await notifier.shutdown()
    }

    // MARK: Webhook

    @Test(.timeLimit(.minutes(1))) func webhookGetsOneFiringAndOneResolved() async throws {
        try await withWebhook { webhook in
            let notifier = AlertNotifier(sinks: [.webhook(webhook.url)], generatorURL: "http://cc.example/admin",
                                         logger: logger)
            let alert = record(id: 7)
            await notifier.update(active: [alert], resolved: [])
            _ = try await eventually("the firing post") { await webhook.recorder.accepted().count == 1 ? true : nil }
            // Unchanged (only counts move): nothing new is posted.
            for crashes in 4...6 { await notifier.update(active: [record(id: 7, crashes: crashes)], resolved: []) }
            try await Task.sleep(for: .milliseconds(500))
            #expect(await webhook.recorder.accepted().count == 1)

            await notifier.update(active: [], resolved: [resolvedRecord(alert)])
            let posts = try await eventually("the resolved post") {
                let posts = await webhook.recorder.accepted()
                return posts.count == 2 ? posts : nil
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(await webhook.recorder.accepted().count == 2)
            #expect(posts.map(\.status) == ["firing", "resolved"])
            #expect(posts.map(\.alert.id) == [7, 7])
            #expect(posts.map(\.alert.fingerprint) == [alert.fingerprint, alert.fingerprint])
            #expect(posts[0].alert.labels == alert.labels)
            #expect(posts[0].alert.endsAt == nil)
            #expect(posts[1].alert.endsAt != nil)
            // The receiver records a post before the notifier has read its answer: wait for that too.
            _ = try await eventually("nothing left to deliver") { await notifier.pendingDeliveries() == 0 ? true : nil }
            await notifier.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(1))) func webhookFailingTwiceGetsTheAlertOnTheThirdTry() async throws {
        try await withWebhook(failFirst: 2) { webhook in
            let notifier = AlertNotifier(sinks: [.webhook(webhook.url)], generatorURL: "http://cc.example/admin",
                                         logger: logger)
            let alert = record(id: 3)
            await notifier.update(active: [alert], resolved: [])
            let posts = try await eventually("the alert is accepted", within: .seconds(10)) {
                let posts = await webhook.recorder.accepted()
                return posts.isEmpty ? nil : posts
            }
            #expect(await webhook.recorder.attempts() == 3)
            #expect(posts.map(\.status) == ["firing"])
            #expect(posts.first?.alert.id == 3)
            _ = try await eventually("nothing left to deliver") { await notifier.pendingDeliveries() == 0 ? true : nil }
            await notifier.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(1))) func anAlertResolvedWhileDeliveryFailsIsSentResolved() async throws {
        try await withWebhook(failFirst: 1) { webhook in
            let notifier = AlertNotifier(sinks: [.webhook(webhook.url)], generatorURL: "http://cc.example/admin",
                                         logger: logger)
            let alert = record(id: 5)
            await notifier.update(active: [alert], resolved: [])
            _ = try await eventually("the first attempt failed") { await webhook.recorder.attempts() == 1 ? true : nil }
            await notifier.update(active: [], resolved: [resolvedRecord(alert)])
            let posts = try await eventually("the retry", within: .seconds(10)) {
                let posts = await webhook.recorder.accepted()
                return posts.isEmpty ? nil : posts
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(posts.map(\.status) == ["resolved"])
            #expect(await webhook.recorder.accepted().count == 1)
            await notifier.shutdown()
        }
    }

    @Test func sinksAreLoggedWithoutPathOrQuery() {
        let sink = AlertNotifier.Sink.webhook(URL(string: "https://hooks.example:8443/services/T0/B0/secret?token=abc")!)
        #expect(sink.description == "webhook https://hooks.example:8443")
        #expect(AlertNotifier.address(URL(string: "http://am.example/alertmanager")!) == "http://am.example:80")
    }
}

// MARK: - Alertmanager harness

/// An alert as `GET /api/v2/alerts` lists it.
struct ListedAlert: Decodable {
    struct Status: Decodable { var state: String }
    var labels: [String: String]
    var annotations: [String: String]
    var generatorURL: String?
    var status: Status
    var state: String { status.state }
}

/// A running Alertmanager without clustering, on 127.0.0.1.
struct RunningAlertmanager {
    let url: URL
    let client: HTTPClient

    func alerts(query: String = "") async throws -> [ListedAlert] {
        let response = try await client.execute(HTTPClientRequest(url: url.absoluteString + "/api/v2/alerts" + query),
                                                timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 22)
        guard response.status.code == 200 else {
            throw HarnessError("GET /api/v2/alerts answered \(response.status.code): \(String(buffer: body))")
        }
        return try JSONDecoder().decode([ListedAlert].self, from: Data(buffer: body))
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

let alertmanagerBinary = "/usr/bin/prometheus-alertmanager"

/// Starts Alertmanager on `port` (a free one when nil), runs `body`, then stops it and removes its files.
func withAlertmanager(port: Int? = nil, _ body: (RunningAlertmanager) async throws -> Void) async throws {
    guard FileManager.default.isExecutableFile(atPath: alertmanagerBinary) else {
        throw HarnessError("\(alertmanagerBinary) is missing: install the Debian package prometheus-alertmanager to run these tests")
    }
    let port = try port ?? freePort()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("alertmanager-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    let process = Process()
    do {
        let config = directory.appendingPathComponent("alertmanager.yml")
        try "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n".write(to: config, atomically: true, encoding: .utf8)
        let log = directory.appendingPathComponent("alertmanager.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: alertmanagerBinary)
        process.arguments = [
            "--config.file=\(config.path)",
            "--storage.path=\(directory.appendingPathComponent("data").path)",
            "--cluster.listen-address=",
            "--web.listen-address=127.0.0.1:\(port)",
        ]
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()

        let running = RunningAlertmanager(url: URL(string: "http://127.0.0.1:\(port)")!, client: client)
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let response = try? await client.execute(HTTPClientRequest(url: running.url.absoluteString + "/-/ready"),
                                                        timeout: .seconds(1)) {
                _ = try? await response.body.collect(upTo: 1 << 16)
                if response.status.code == 200 { break }
            }
            guard process.isRunning, ContinuousClock.now < deadline else {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw HarnessError("Alertmanager did not get ready on port \(port):\n\(text)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await body(running)
    } catch {
        await stop(process, client: client, directory: directory)
        throw error
    }
    await stop(process, client: client, directory: directory)
}

private func stop(_ process: Process, client: HTTPClient, directory: URL) async {
    if process.isRunning {
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
    try? await client.shutdown()
    try? FileManager.default.removeItem(at: directory)
}

/// A port nothing listens on right now (the kernel's choice for a socket bound to port 0).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    guard bound else { throw HarnessError("bind: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls `probe` every 100 ms until it gives a value; fails with `what` after `within`.
func eventually<T>(_ what: String, within: Duration = .seconds(10),
                   _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + within
    while true {
        if let value = try await probe() { return value }
        guard ContinuousClock.now < deadline else { throw HarnessError("timed out waiting for: \(what)") }
        try await Task.sleep(for: .milliseconds(100))
    }
}

// MARK: - Webhook receiver

/// A webhook body as the notifier posts it.
struct WebhookPost: Decodable, Sendable {
    struct Alert: Decodable, Sendable {
        var id: Int
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
        var endsAt: String?
        var fingerprint: String

        enum CodingKeys: String, CodingKey {
            case id, labels, annotations, startsAt = "starts_at", endsAt = "ends_at", fingerprint
        }
    }

    var status: String
    var alert: Alert
}

/// Every post the receiver got, and which it accepted.
actor WebhookRecorder {
    private var failuresLeft: Int
    private var posts: [(post: WebhookPost, accepted: Bool)] = []

    init(failFirst: Int) { failuresLeft = failFirst }

    /// 500 while failures are left, else 200.
    func receive(_ body: Data) throws -> HTTPResponse.Status {
        let post = try JSONDecoder().decode(WebhookPost.self, from: body)
        let accepted = failuresLeft == 0
        if !accepted { failuresLeft -= 1 }
        posts.append((post, accepted))
        return accepted ? .ok : .internalServerError
    }

    func accepted() -> [WebhookPost] { posts.filter(\.accepted).map(\.post) }
    func attempts() -> Int { posts.count }
}

struct RunningWebhook {
    let url: URL
    let recorder: WebhookRecorder
}

actor PortBox {
    var port: Int?
    func set(_ port: Int?) { self.port = port }
}

/// Runs a webhook receiver on 127.0.0.1 (kernel-chosen port) that answers 500 to the first
/// `failFirst` posts, then 200.
func withWebhook(failFirst: Int = 0, _ body: (RunningWebhook) async throws -> Void) async throws {
    let recorder = WebhookRecorder(failFirst: failFirst)
    let router = Router()
    router.post("hook") { request, _ -> HTTPResponse.Status in
        let buffer = try await request.body.collect(upTo: 1 << 20)
        return try await recorder.receive(Data(buffer: buffer))
    }
    let portBox = PortBox()
    var logger = Logger(label: "webhook")
    logger.logLevel = .critical  // cancelling the server at the end logs errors that mean nothing here
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                          onServerRunning: { channel in await portBox.set(channel.localAddress?.port) }, logger: logger)
    let server = Task { try await app.runService(gracefulShutdownSignals: []) }
    do {
        let port = try await eventually("the webhook receiver listens") { await portBox.port }
        // The query stands for a token the notifier must not log.
        try await body(RunningWebhook(url: URL(string: "http://127.0.0.1:\(port)/hook?token=secret")!, recorder: recorder))
    } catch {
        server.cancel()
        _ = await server.result
        throw error
    }
    server.cancel()
    _ = await server.result
}
