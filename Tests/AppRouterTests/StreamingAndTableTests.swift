import Foundation
import Logging
import NIOCore
import PlatformClient
import PlatformModels
import Synchronization
import Testing

@testable import AppRouter

/// Streaming with back-pressure (1 GiB each way, a client that stops reading) and the route
/// table's life (a change visible within 100 ms of the CC's commit, the CC going away).
@Suite(.serialized) struct StreamingAndTableTests {
    static let gibibyte = 1 << 30

    /// The `after` parameter of a route-table poll.
    static func after(_ uri: String) -> String? {
        URLComponents(string: uri)?.queryItems?.first { $0.name == "after" }?.value
    }

    @Test func gibibyteUploadStreamsWithFlatMemory() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source) { router in
            let port = router.http
            let (answer, growth) = try await measuringMemory {
                try await withConnection(port) { c -> String in
                    try await c.send("POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: \(Self.gibibyte)\r\n\r\n")
                    let chunk = ByteBuffer(repeating: UInt8(ascii: "u"), count: 256 * 1024)
                    for _ in 0..<(Self.gibibyte / chunk.readableBytes) { try await c.send(chunk) }
                    return try await c.readResponse().text
                }
            }
            #expect(answer == "received \(Self.gibibyte)")
            #expect(app.stats.bytesReceived.load(ordering: .relaxed) == Self.gibibyte)
            #expect(growth < 96 << 20, "resident memory grew by \(growth >> 20) MiB")
        }
    }

    @Test func gibibyteDownloadStreamsWithFlatMemory() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source) { router in
            let port = router.http
            let (received, growth) = try await measuringMemory {
                try await withConnection(port) { c -> Int in
                    try await c.send("GET /download?bytes=\(Self.gibibyte) HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
                    let head = try await c.readResponseHead()
                    #expect(head.status == 200)
                    return try await c.discard(Self.gibibyte)
                }
            }
            #expect(received == Self.gibibyte)
            #expect(growth < 96 << 20, "resident memory grew by \(growth >> 20) MiB")
        }
    }

    /// A client that stops reading holds the backend back: the router buffers a bounded amount.
    @Test func slowClientHoldsTheBackendBack() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        let size = 512 << 20
        try await withRouter(source: source) { router in
            try await withConnection(router.http) { c in
                try await c.send("GET /download?bytes=\(size) HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
                let head = try await c.readResponseHead()
                #expect(head.status == 200)
                try await Task.sleep(for: .milliseconds(1500))
                let sentWhileStalled = app.stats.bytesSent.load(ordering: .relaxed)
                #expect(sentWhileStalled < 64 << 20, "backend wrote \(sentWhileStalled >> 20) MiB while the client read nothing")
                #expect(try await c.discard(size) == size)
            }
        }
    }

    /// The CC commits a change and wakes the long-poll: the router routes it within 100 ms.
    @Test func routeChangeVisibleWithin100Milliseconds() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let stub = try await StubController.start(table(1, [("old.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        let client = ComponentClient(api: stub.url, credential: StubController.credential, component: "router")
        try await withRouter(source: client, { $0.routeTablePollSeconds = 30 }) { router in
            #expect(try await request(router.http, host: "old.example.com").status == 200)
            #expect(try await request(router.http, host: "new.example.com").status == 404)
            // Let the router's next poll wait at the stub.
            try await eventually("the router's poll waits at the stub") { stub.waiting == 1 }
            let polls = stub.requests
            let committed = ContinuousClock.now
            stub.update(table(2, [
                ("old.example.com", "", [backend("app-guid", 0, port: app.port)]),
                ("new.example.com", "", [backend("app-guid", 0, port: app.port)]),
            ]))
            var visible: Duration?
            while ContinuousClock.now - committed < .seconds(2) {
                if try await request(router.http, host: "new.example.com").status == 200 {
                    visible = ContinuousClock.now - committed
                    break
                }
            }
            let elapsed = try #require(visible, "the new route never became visible")
            #expect(elapsed < .milliseconds(100), "visible after \(elapsed)")
            // The router's next poll already asks after the new version: nothing came in between.
            try await eventually("the router's next poll waits at the stub") { stub.waiting == 1 && stub.requests > polls }
            #expect(stub.requests == polls + 1, "the change arrived on the waiting poll")
            #expect(Self.after(stub.uris[polls]) == "2")
            #expect(try await metric(router.status, "router_route_table_version") == 2)
        }
        try await client.shutdown()
        await stub.stop()
    }

    /// G1/G8: the CC goes away; the router keeps its table, keeps routing and says so.
    @Test func routingContinuesWhileTheControllerIsDown() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let stub = try await StubController.start(table(3, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        let client = ComponentClient(api: stub.url, credential: StubController.credential, component: "router")
        try await withRouter(source: client) { router in
            #expect(try await request(router.http, host: "app.example.com").status == 200)
            await stub.stop()
            try await eventually("the table is reported stale") {
                try await metric(router.status, "router_route_table_stale") == 1
            }
            for _ in 0..<5 {
                #expect(try await request(router.http, host: "app.example.com").status == 200)
            }
            let health = try await status(router.status, "/health")
            #expect(health.status == 200)
            #expect(health.text.contains("unreachable"))
            #expect(try await metric(router.status, "router_route_table_version") == 3)
            #expect((try await metric(router.status, "router_route_table_fetch_failures_total") ?? 0) >= 1)
        }
        try await client.shutdown()
    }

    @Test func healthFailsUntilTheFirstTable() async throws {
        let stub = try await StubController.start(table(1, []))
        await stub.stop()
        let client = ComponentClient(api: stub.url, credential: StubController.credential, component: "router")
        var config = RouterConfig(controllerURL: stub.url, credential: StubController.credential)
        config.threads = 1
        let router = AppRouter(config: config, logger: .init(label: "t"), source: client)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await router.run() }
            let addresses = try await router.listening()
            try await Task.sleep(for: .milliseconds(200))
            let health = try await status(addresses.status, "/health")
            #expect(health.status == 503)
            let answer = try await request(addresses.http, host: "app.example.com")
            #expect(answer.status == 503)
            #expect(answer.header("X-Cf-RouterError") == "route_table_unavailable")
            tasks.cancelAll()
        }
        try await client.shutdown()
    }
}
