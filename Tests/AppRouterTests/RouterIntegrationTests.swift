import Foundation
import Logging
import NIOCore
import NIOPosix
import PlatformModels
import ServiceLifecycle
import Synchronization
import Testing

@testable import AppRouter

/// The router on real sockets, with small backends on loopback and a stub CC.
@Suite(.serialized) struct RouterIntegrationTests {
    @Test func routesByHostAddsForwardingHeadersAndKeepsConnectionsAlive() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source) { router in
            try await withConnection(router.http) { c in
                try await c.send("GET /headers?x=1 HTTP/1.1\r\nHost: APP.example.com:8081\r\nX-Forwarded-For: 10.1.1.1\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\r\n")
                let first = try await c.readResponse()
                #expect(first.status == 200)
                #expect(first.header("X-Backend") == "app")
                let seen = first.text
                #expect(seen.contains("X-Forwarded-For: 10.1.1.1, 127.0.0.1\n"))
                #expect(seen.contains("X-Forwarded-Proto: http\n"))
                #expect(seen.contains("X-Forwarded-Host: APP.example.com:8081\n"))
                #expect(seen.contains("X-CF-ApplicationID: app-guid\n"))
                #expect(seen.contains("X-CF-InstanceIndex: 0\n"))
                #expect(seen.contains("X-Vcap-Request-Id: "))
                #expect(seen.contains("X-Request-Id: "))
                #expect(!seen.contains("X-Secret"))
                #expect(seen.contains("target: /headers?x=1\n"))
                try await c.send("GET / HTTP/1.1\r\nHost: app.example.com.\r\n\r\n")
                let second = try await c.readResponse()
                #expect(second.status == 200)
                #expect(second.text == "app")
            }
            #expect(app.stats.connections.load(ordering: .relaxed) == 1)
        }
    }

    @Test func routerAnswersOfTheContract() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [
            ("app.example.com", "", [backend("app-guid", 0, port: app.port)]),
            ("down.example.com", "", []),
        ]))
        try await withRouter(source: source, { $0.maxHeaderBytes = 8192 }) { router in
            let unknown = try await request(router.http, host: "nope.example.com")
            #expect(unknown.status == 404)
            #expect(unknown.header("X-Cf-RouterError") == "unknown_route")
            let down = try await request(router.http, host: "down.example.com")
            #expect(down.status == 503)
            #expect(down.header("X-Cf-RouterError") == "no_endpoints")
            let badHost = try await request(router.http, host: "bad/host")
            #expect(badHost.status == 400)
            #expect(badHost.header("X-Cf-RouterError") != nil)
            let duplicate = try await request(router.http, host: "app.example.com", headers: ["Host: app.example.com"])
            #expect(duplicate.status == 400)
            let big = try await request(router.http, host: "app.example.com", headers: ["Cookie: " + String(repeating: "x", count: 10_000)])
            #expect(big.status == 431)
            #expect(big.header("X-Cf-RouterError") == "request_header_fields_too_large")
            #expect(app.stats.requests.load(ordering: .relaxed) == 0)
        }
    }

    /// D3: smuggling shapes are refused with 400 and the connection is closed; nothing reaches the app.
    @Test(arguments: [
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG",
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-encoding : chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: +3\r\n\r\nabc",
        "GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Folded: a\r\n b\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ])
    func smugglingShapesAre400AndClose(_ text: String) async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source) { router in
            let answer = try await withConnection(router.http) { c -> String in
                try await c.send(text)
                return try await c.readToEnd()
            }
            #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(answer)")
            #expect(answer.contains("Connection: close"))
            #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "exactly one answer")
        }
    }

    @Test func retriesAnotherInstanceWhenConnectIsRefusedAndBenchesTheDeadOne() async throws {
        let app = try await TestBackend.start("live")
        defer { Task { await app.stop() } }
        let dead = try await unusedPort()
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [
            backend("app-guid", 0, port: dead), backend("app-guid", 1, port: app.port),
        ])]))
        try await withRouter(source: source) { router in
            for _ in 0..<6 {
                let answer = try await request(router.http, host: "app.example.com")
                #expect(answer.status == 200)
                #expect(answer.text == "live")
            }
            #expect(try await metric(router.status, "router_backend_failures_total{kind=\"connect\"}") == 1)
            #expect(try await metric(router.status, "router_backends_benched_total") == 1)
        }
    }

    @Test func answers502WhenEveryAttemptFails() async throws {
        let ports = [try await unusedPort(), try await unusedPort(), try await unusedPort(), try await unusedPort()]
        let source = MemoryRouteSource(table(1, [("app.example.com", "", ports.enumerated().map { backend("app-guid", $0.offset, port: $0.element) })]))
        try await withRouter(source: source) { router in
            let answer = try await request(router.http, host: "app.example.com")
            #expect(answer.status == 502)
            #expect(answer.header("X-Cf-RouterError") == "endpoint_failure")
            // Three attempts, never a fourth.
            #expect(try await metric(router.status, "router_backend_failures_total{kind=\"connect\"}") == 3)
        }
    }

    /// Once request bytes reached a backend nothing is retried, and a client hang-up benches nobody.
    @Test func neverRetriesAfterTheRequestWasWritten() async throws {
        let silent = try await RawBackend.start { _, channel in channel.close(promise: nil) }
        defer { Task { await silent.stop() } }
        let other = try await TestBackend.start("other")
        defer { Task { await other.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [
            backend("app-guid", 0, port: silent.port), backend("app-guid", 1, port: other.port),
        ])]))
        try await withRouter(source: source) { router in
            let answer = try await request(router.http, host: "app.example.com", "/", method: "POST", body: "data")
            #expect(answer.status == 502)
            #expect(silent.requestCount == 1)
            #expect(other.stats.requests.load(ordering: .relaxed) == 0)
            #expect(try await metric(router.status, "router_backends_benched_total") == 0)
        }
    }

    @Test func clientHangUpDoesNotBenchTheBackend() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source) { router in
            try await withConnection(router.http) { c in
                try await c.send("GET /sleep?ms=300 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
            }
            // The hang-up is counted (and any benching done) when the router sees the close.
            try await eventually("the hang-up is counted") {
                try await metric(router.status, "router_requests_total{status=\"499\"}") != nil
            }
            #expect(try await metric(router.status, "router_requests_total{status=\"499\"}") == 1)
            #expect(try await metric(router.status, "router_backends_benched_total") == 0)
            #expect(try await request(router.http, host: "app.example.com").status == 200)
        }
    }

    @Test func stickySessionsStayWithTheirInstance() async throws {
        let a = try await TestBackend.start("a")
        let b = try await TestBackend.start("b")
        defer { Task { await a.stop(); await b.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [
            backend("app-guid", 0, port: a.port, instance: "inst-a"), backend("app-guid", 1, port: b.port, instance: "inst-b"),
        ])]))
        try await withRouter(source: source) { router in
            let login = try await request(router.http, host: "app.example.com", "/session")
            let cookies = login.headers("Set-Cookie")
            #expect(cookies.contains("JSESSIONID=abc123; Path=/; HttpOnly"))
            let vcap = try #require(cookies.first { $0.hasPrefix("__VCAP_ID__=") })
            let instance = String(vcap.dropFirst("__VCAP_ID__=".count).prefix { $0 != ";" })
            #expect(vcap == "__VCAP_ID__=\(instance); Path=/; HttpOnly")
            let owner = login.header("X-Backend")
            #expect(instance == (owner == "a" ? "inst-a" : "inst-b"))
            for _ in 0..<8 {
                let again = try await request(router.http, host: "app.example.com", headers: ["Cookie: JSESSIONID=abc123; __VCAP_ID__=\(instance)"])
                #expect(again.header("X-Backend") == owner)
            }
            // Without the cookie requests spread again.
            var seen = Set<String>()
            for _ in 0..<4 { seen.insert(try await request(router.http, host: "app.example.com").header("X-Backend") ?? "") }
            #expect(seen == ["a", "b"])
        }
    }

    @Test func instanceTargeting() async throws {
        let a = try await TestBackend.start("a")
        let b = try await TestBackend.start("b")
        defer { Task { await a.stop(); await b.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [
            backend("app-guid", 0, port: a.port), backend("app-guid", 1, port: b.port),
        ])]))
        try await withRouter(source: source) { router in
            for _ in 0..<5 {
                let answer = try await request(router.http, host: "app.example.com", headers: ["X-Cf-App-Instance: app-guid:1"])
                #expect(answer.header("X-Backend") == "b")
            }
            let bad = try await request(router.http, host: "app.example.com", headers: ["X-Cf-App-Instance: app-guid"])
            #expect(bad.status == 400)
            #expect(bad.header("X-Cf-RouterError") == "invalid_cf_app_instance_header")
            let unknown = try await request(router.http, host: "app.example.com", headers: ["X-Cf-App-Instance: app-guid:5"])
            #expect(unknown.status == 400)
            #expect(unknown.header("X-Cf-RouterError") == "unknown_route")
        }
    }

    @Test func webSocketUpgradeBecomesAByteTunnel() async throws {
        let ws = try await RawBackend.start { head, channel in
            if head.lowercased().contains("upgrade: websocket") {
                channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), promise: nil)
            }
        }
        defer { Task { await ws.stop() } }
        let source = MemoryRouteSource(table(1, [("ws.example.com", "", [backend("ws-guid", 0, port: ws.port)])]))
        try await withRouter(source: source) { router in
            try await withConnection(router.http) { c in
                try await c.send("GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                let switched = try await c.readResponse()
                #expect(switched.status == 101)
                #expect(switched.header("Upgrade") == "websocket")
                #expect(switched.header("Connection") == "Upgrade")
                // A masked text frame "hello", echoed back byte for byte by the backend.
                var frame = ByteBuffer(bytes: [0x81, 0x85, 0x01, 0x02, 0x03, 0x04])
                frame.writeBytes(Array("hello".utf8).enumerated().map { $0.element ^ [0x01, 0x02, 0x03, 0x04][$0.offset % 4] })
                let expected = frame
                try await c.send(frame)
                while c.buffer.readableBytes < expected.readableBytes {
                    guard try await c.fill() else { break }
                }
                #expect(c.buffer.readSlice(length: expected.readableBytes) == expected)
                for i in 0..<20 {
                    try await c.send("message \(i)")
                }
                let all = (0..<20).map { "message \($0)" }.joined()
                while c.buffer.readableBytes < all.utf8.count {
                    guard try await c.fill() else { break }
                }
                #expect(c.buffer.readString(length: all.utf8.count) == all)
            }
            #expect(try await metric(router.status, "router_upgrades_total") == 1)
        }
    }

    /// D9: a backend answer whose head carries a bare CR (header injection) or other broken
    /// syntax never reaches the client; the client gets 502.
    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nX-A: b\rSet-Cookie: evil=1\r\nContent-Length: 5\r\n\r\nEVIL!",
        "HTTP/1.1 200 OK\r\nX-A: b\nSet-Cookie: evil=1\r\nContent-Length: 5\r\n\r\nEVIL!",
        "HTTP/1.1 200 OK\r\nX-A: b\r\n folded: evil\r\nContent-Length: 5\r\n\r\nEVIL!",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nEVIL!",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nEVIL!",
        "HTTP/1.1 200 OK\r\nX-Nul: a\u{0}b\r\nContent-Length: 5\r\n\r\nEVIL!",
        "HTTP/2 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!",
    ])
    func invalidBackendAnswersBecome502(_ answer: String) async throws {
        let bad = try await RawBackend.start { _, channel in
            channel.writeAndFlush(ByteBuffer(string: answer), promise: nil)
        }
        defer { Task { await bad.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: bad.port)])]))
        try await withRouter(source: source) { router in
            let response = try await request(router.http, host: "app.example.com")
            #expect(response.status == 502)
            #expect(response.header("X-Cf-RouterError") == "endpoint_failure")
            #expect(!response.text.contains("EVIL"))
            #expect(response.header("Set-Cookie") == nil)
        }
    }

    /// D11: a backend that accepts the request and never answers gets the response timeout.
    @Test func backendResponseTimeout() async throws {
        let hang = try await RawBackend.start { _, _ in }
        defer { Task { await hang.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: hang.port)])]))
        try await withRouter(source: source, { $0.backendResponseTimeoutSeconds = 1 }) { router in
            let started = ContinuousClock.now
            let response = try await request(router.http, host: "app.example.com")
            let elapsed = ContinuousClock.now - started
            #expect(response.status == 502)
            #expect(elapsed >= .milliseconds(900))
            #expect(elapsed < .seconds(60), "the 1 s timeout, not the 900 s default")
            #expect(try await metric(router.status, "router_backend_failures_total{kind=\"response_timeout\"}") == 1)
        }
    }

    @Test func chunkedBodiesPassThroughAndHTTP10ClientsGetThemDechunked() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source) { router in
            try await withConnection(router.http) { c in
                try await c.send("POST /upload HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                let upload = try await c.readResponse()
                #expect(upload.text == "received 11")
                try await c.send("GET /chunked HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
                let chunked = try await c.readResponse()
                #expect(chunked.header("Transfer-Encoding") == "chunked")
                #expect(chunked.text == "alpha-beta-gamma")
            }
            let old = try await withConnection(router.http) { c -> String in
                try await c.send("GET /chunked HTTP/1.0\r\nHost: app.example.com\r\n\r\n")
                return try await c.readToEnd()
            }
            #expect(old.hasSuffix("\r\n\r\nalpha-beta-gamma"))
            #expect(!old.lowercased().contains("transfer-encoding"))
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source) { router in
            try await withConnection(router.http) { c in
                try await c.send("GET /sleep?ms=50 HTTP/1.1\r\nHost: app.example.com\r\n\r\nGET /missing HTTP/1.1\r\nHost: other\r\n\r\nGET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
                #expect(try await c.readResponse().text == "slept")
                #expect(try await c.readResponse().status == 404)
                #expect(try await c.readResponse().text == "app")
            }
        }
    }

    /// D5: a slowloris client is cut off while others are served.
    @Test func slowlorisIsCutOff() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source, { $0.headerReadTimeoutMilliseconds = 700 }) { router in
            let started = ContinuousClock.now
            let (answer, cutAfter) = try await withConnection(router.http) { c -> (String, Duration) in
                // A byte every 100 ms: each read is progress, but the head as a whole is late.
                let drip = Array("GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".utf8)
                for byte in drip {
                    do {
                        try await c.send(ByteBuffer(bytes: [byte]))
                    } catch {
                        break
                    }
                    // Dripping goes on long after the 700 ms deadline: a cut well before the drip
                    // ends is the head deadline at work, not an idle timeout after it.
                    if ContinuousClock.now - started > .milliseconds(4000) { break }
                    // Meanwhile another client is served at once.
                    if ContinuousClock.now - started < .milliseconds(400) {
                        #expect(try await request(router.http, host: "app.example.com").status == 200)
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let text = try await c.readToEnd()
                return (text, ContinuousClock.now - started)
            }
            #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
            #expect(cutAfter < .milliseconds(3500), "cut after \(cutAfter)")
        }
    }

    @Test func clientConnectionCapClosesExtraConnections() async throws {
        let source = MemoryRouteSource(table(1, []))
        try await withRouter(source: source, { $0.maxClientConnections = 2 }) { router in
            try await withConnection(router.http) { first in
                try await withConnection(router.http) { second in
                    // Both count against the cap before the third arrives.
                    try await eventually("two open client connections") {
                        try await metric(router.status, "router_client_connections") == 2
                    }
                    let closed = try await withConnection(router.http) { third -> Bool in
                        try await third.waitForClose()
                    }
                    #expect(closed)
                    try await first.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                    #expect(try await first.readResponse().status == 404)
                    try await second.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                    #expect(try await second.readResponse().status == 404)
                }
            }
            #expect(try await metric(router.status, "router_client_connections_rejected_total") == 1)
        }
    }

    @Test func leastConnectionsBalancing() async throws {
        let a = try await TestBackend.start("a")
        let b = try await TestBackend.start("b")
        defer { Task { await a.stop(); await b.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [
            backend("app-guid", 0, port: a.port), backend("app-guid", 1, port: b.port),
        ])]))
        try await withRouter(source: source, { $0.balancing = .leastConnections }) { router in
            // One slow request keeps `a` or `b` busy; the quick ones all go to the other. The
            // quick ones start once the slow one has reached its backend, and it answers only
            // long after they are done, however loaded the machine.
            try await withConnection(router.http) { slow in
                try await slow.send("GET /sleep?ms=4000 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
                try await eventually("the slow request reaches a backend", within: .seconds(10)) {
                    a.stats.requests.load(ordering: .relaxed) + b.stats.requests.load(ordering: .relaxed) > 0
                }
                var seen: [String: Int] = [:]
                for _ in 0..<6 { seen[try await request(router.http, host: "app.example.com").header("X-Backend") ?? "", default: 0] += 1 }
                #expect(seen.count == 1)
                let busy = try await slow.readResponse().header("X-Backend") ?? ""
                #expect(seen[busy] == nil)
            }
        }
    }

    @Test func idleBackendConnectionsClosedByTheAppAreNotReused() async throws {
        // An app that answers with keep-alive and then closes the idle connection soon after.
        let closer = try await RawBackend.start { _, channel in
            channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), promise: nil)
            channel.eventLoop.scheduleTask(in: .milliseconds(30)) { channel.close(promise: nil) }
        }
        defer { Task { await closer.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: closer.port)])]))
        try await withRouter(source: source, { $0.threads = 1 }) { router in
            for _ in 0..<4 {
                #expect(try await request(router.http, host: "app.example.com").status == 200)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await metric(router.status, "router_requests_total{status=\"502\"}") == nil)
        }
    }

    /// A pooled connection the app closes just as a request arrives: a safe request without a
    /// body is sent again on a fresh connection; anything else gets 502 (never resent).
    @Test func staleKeepAliveConnectionsRetrySafeRequestsOnly() async throws {
        // Answers the first request of each connection and drops the connection on the second.
        let perConnection = RequestsPerConnection()
        let app = try await RawBackend.start { _, channel in
            let n = perConnection.count(channel)
            if n == 1 {
                channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), promise: nil)
            } else {
                channel.close(promise: nil)
            }
        }
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source, { $0.threads = 1 }) { router in
            #expect(try await request(router.http, host: "app.example.com").status == 200)
            // Reuses the pooled connection, which the app drops: resent on a new one.
            #expect(try await request(router.http, host: "app.example.com").status == 200)
            #expect(app.requestCount == 3)
            #expect(try await metric(router.status, "router_backends_benched_total") == 0)
            // A POST on the (again stale) pooled connection is not resent.
            let post = try await request(router.http, host: "app.example.com", "/", method: "POST", body: "x")
            #expect(post.status == 502)
            #expect(app.requestCount == 4)
        }
    }

    @Test func healthAndMetrics() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(7, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source) { router in
            #expect(try await request(router.http, host: "app.example.com").status == 200)
            #expect(try await request(router.http, host: "nope").status == 404)
            let health = try await status(router.status, "/health")
            #expect(health.status == 200)
            let text = try await status(router.status, "/metrics").text
            #expect(text.contains("router_requests_total{status=\"200\"} 1\n"))
            #expect(text.contains("router_requests_total{status=\"404\"} 1\n"))
            #expect(text.contains("router_request_duration_seconds_count 2\n"))
            #expect(text.contains("router_errors_total{error=\"unknown_route\"} 1\n"))
            #expect(text.contains("router_route_table_version 7\n"))
            #expect(text.contains("router_route_table_stale 0\n"))
            #expect(text.contains("# TYPE router_request_duration_seconds histogram\n"))
            #expect(try await status(router.status, "/nope").status == 404)
        }
    }

    @Test func accessLogHasOneLinePerRequest() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("router-access-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source, { $0.accessLog = path }) { router in
            _ = try await request(router.http, host: "app.example.com", "/x", headers: ["User-Agent: tester/1"])
            _ = try await request(router.http, host: "nope.example.com")
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        // Each event loop writes its own lines, so the order between connections may vary.
        let routed = try #require(lines.first { $0.hasPrefix("app.example.com - [") })
        #expect(routed.contains("\"GET /x HTTP/1.1\" 200 0 3 \"tester/1\" \"127.0.0.1\" \"127.0.0.1:\(app.port)\""))
        #expect(routed.contains("app_id:\"app-guid\" app_index:\"0\" x_cf_routererror:\"-\""))
        #expect(routed.contains("vcap_request_id:\""))
        let unknown = try #require(lines.first { $0.hasPrefix("nope.example.com - [") })
        #expect(unknown.contains("\" 404 "))
        #expect(!unknown.contains("vcap_request_id:\"-\""))
        #expect(unknown.hasSuffix("x_cf_routererror:\"unknown_route\""))
    }

    @Test func gracefulDrainFinishesRequestsInFlight() async throws {
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        var config = RouterConfig(controllerURL: "http://127.0.0.1:9", credential: "x")
        config.threads = 1
        config.drainTimeoutSeconds = 5
        var logger = Logger(label: "router-test")
        logger.logLevel = .critical
        let router = AppRouter(config: config, logger: logger, source: source)
        let group = ServiceGroup(services: [router], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let addresses = try await router.listening()
            try await waitUntilHealthy(addresses.status)
            try await withConnection(addresses.http) { c in
                // The drain starts once the request has reached the app, well before it answers.
                try await c.send("GET /sleep?ms=2000 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
                try await eventually("the request reaches the app") { app.stats.requests.load(ordering: .relaxed) == 1 }
                await group.triggerGracefulShutdown()
                let answer = try await c.readResponse()
                #expect(answer.status == 200)
                #expect(answer.text == "slept")
                #expect(answer.header("Connection") == "close")
            }
            try await tasks.waitForAll()
            await #expect(throws: (any Error).self) { try await request(addresses.http, host: "app.example.com") }
        }
    }

    @Test func tlsTermination() async throws {
        let openssl = try #require(["/usr/bin/openssl", "/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                   "openssl is needed to make a test certificate")
        let curl = try #require(["/usr/bin/curl", "/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                "curl is needed as a TLS client")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("router-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path
        let key = dir.appendingPathComponent("key.pem").path
        #expect(try run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                                  "-subj", "/CN=app.example.com"]).status == 0)
        let app = try await TestBackend.start("app")
        defer { Task { await app.stop() } }
        let source = MemoryRouteSource(table(1, [("app.example.com", "", [backend("app-guid", 0, port: app.port)])]))
        try await withRouter(source: source, {
            $0.tlsListenHost = "127.0.0.1"
            $0.tlsCertificateFile = cert
            $0.tlsKeyFile = key
        }) { router in
            let port = try #require(router.https)
            let result = try run(curl, ["-sk", "--max-time", "10", "--resolve", "app.example.com:\(port):127.0.0.1",
                                        "https://app.example.com:\(port)/headers"])
            #expect(result.status == 0)
            #expect(result.output.contains("X-Forwarded-Proto: https"))
            #expect(result.output.contains("X-CF-ApplicationID: app-guid"))
        }
    }
}

/// Requests seen per backend connection.
/// Requests seen on each backend connection. The channels are kept, so that a closed one's
/// address cannot be taken by a new connection and inherit its count.
final class RequestsPerConnection: Sendable {
    private let counts = Mutex<[ObjectIdentifier: (channel: any Channel, requests: Int)]>([:])

    /// Counts one more request on `channel`; returns its requests so far.
    func count(_ channel: any Channel) -> Int {
        counts.withLock { counts in
            let requests = (counts[ObjectIdentifier(channel)]?.requests ?? 0) + 1
            counts[ObjectIdentifier(channel)] = (channel, requests)
            return requests
        }
    }
}

/// Runs a program and returns its exit status and standard output.
func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A port nothing listens on (bound once, then released).
func unusedPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 1
    try await channel.close()
    return port
}
