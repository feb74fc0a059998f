import Logging
import NIOCore
import NIOEmbedded
import PlatformModels
import Testing

@testable import AppRouter

/// `ClientHandler` and `BackendHandler` on `EmbeddedChannel`: the router's own answers, limits,
/// timeouts with an injected clock, and read gating — no sockets.
@Suite struct HandlerTests {
    struct Fixture {
        let loop = EmbeddedEventLoop()
        let context: LoopContext
        let channel: EmbeddedChannel
        let handler: ClientHandler

        init(_ configure: (inout RouterConfig) -> Void = { _ in }, routes: [RouteTableEntry]? = nil) throws {
            var config = RouterConfig(controllerURL: "http://127.0.0.1:9", credential: "x")
            configure(&config)
            context = LoopContext(eventLoop: loop, settings: ProxySettings(config),
                                  shared: RouterShared(accessLog: .disabled, logger: Logger(label: "test")))
            context.snapshot = snapshot(routes ?? [
                RouteTableEntry(routeGUID: "r", host: "app.example.com", path: "", backends: [backend("app", 0, port: 1)]),
                RouteTableEntry(routeGUID: "down", host: "down.example.com", path: "", backends: []),
            ])
            channel = EmbeddedChannel(loop: loop)
            handler = ClientHandler(loop: context, https: false)
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 4000)).wait()
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }

        /// The handler is done with the connection: closed, or closing (output shut, lingering).
        var closing: Bool { !channel.isActive || handler.phase == .closing }

        /// Everything the handler wrote so far.
        func output() throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }
    }

    @Test func unknownRouteKeepsTheConnectionAndAnswersPipelinedRequestsInOrder() throws {
        let f = try Fixture()
        try f.send("GET /a HTTP/1.1\r\nHost: nope.example.com\r\n\r\nGET /b HTTP/1.1\r\nHost: down.example.com\r\n\r\n")
        let out = try f.output()
        let first = try #require(out.range(of: "HTTP/1.1 404 Not Found"))
        let second = try #require(out.range(of: "HTTP/1.1 503 Service Unavailable"))
        #expect(first.lowerBound < second.lowerBound)
        #expect(out.contains("X-Cf-RouterError: unknown_route"))
        #expect(out.contains("X-Cf-RouterError: no_endpoints"))
        #expect(f.channel.isActive)
        #expect(f.context.metrics.requestsByStatus[404] == 1)
        #expect(f.context.metrics.requestsByStatus[503] == 1)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: app.example.com\r\nHost: app.example.com\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: bad host\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: app.example.com\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\nHost: app.example.com\n\n",
        "GET / HTTP/1.2\r\nHost: app.example.com\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Cf-App-Instance: nonsense\r\n\r\n",
    ])
    func badRequestsAnswer400(_ text: String) throws {
        let f = try Fixture()
        try f.send(text)
        let out = try f.output()
        #expect(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(out)")
        #expect(out.contains("X-Cf-RouterError: "))
    }

    @Test func framingFaultsCloseTheConnection() throws {
        let f = try Fixture()
        try f.send("POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc")
        let out = try f.output()
        #expect(out.contains("Connection: close"))
        #expect(f.closing)
    }

    @Test func oversizedHeadsAnswer431AndClose() throws {
        let f = try Fixture { $0.maxHeaderBytes = 2048 }
        // Arrives in pieces and never completes within the limit.
        try f.send("GET / HTTP/1.1\r\nHost: app.example.com\r\n")
        try f.send("Cookie: " + String(repeating: "c", count: 1500) + "\r\n")
        #expect(try f.output().isEmpty)
        try f.send("X-More: " + String(repeating: "m", count: 1500) + "\r\n")
        let out = try f.output()
        #expect(out.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(f.closing)

        let many = try Fixture { $0.maxHeaderFields = 20 }
        var text = "GET / HTTP/1.1\r\nHost: app.example.com\r\n"
        for i in 0..<30 { text += "X-\(i): v\r\n" }
        try many.send(text + "\r\n")
        #expect(try many.output().hasPrefix("HTTP/1.1 431 "))
    }

    /// Slowloris (D5): a head that does not finish within the header read timeout is cut with 408.
    @Test func headerReadTimeoutCutsSlowHeads() async throws {
        let f = try Fixture { $0.headerReadTimeoutMilliseconds = 500 }
        try f.send("GET / HTTP/1.1\r\nHo")
        let armed = f.handler.deadline
        // More bytes later do not buy more time.
        try await Task.sleep(for: .milliseconds(5))
        _ = f.context.preciseNow()
        try f.send("st: app")
        #expect(f.handler.deadline == armed)
        // Judged against the armed deadline, not the clock: a loaded machine may sleep long.
        f.handler.checkDeadline(now: armed - 100_000_000)
        #expect(!f.closing)
        f.handler.checkDeadline(now: armed + 100_000_000)
        let out = try f.output()
        #expect(out.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(out.contains("X-Cf-RouterError: header_read_timeout"))
        #expect(f.closing)
    }

    @Test func idleKeepAliveConnectionsClose() throws {
        let f = try Fixture { $0.clientIdleTimeoutSeconds = 5 }
        try f.send("GET / HTTP/1.1\r\nHost: nope.example.com\r\n\r\n")
        _ = try f.output()
        f.handler.checkDeadline(now: f.context.now + 4_000_000_000)
        #expect(f.channel.isActive)
        f.handler.checkDeadline(now: f.context.now + 6_000_000_000)
        #expect(!f.channel.isActive)
        #expect(try f.output().isEmpty)
    }

    @Test func routeTableNotLoadedYet() throws {
        let f = try Fixture()
        f.context.snapshot = .empty
        try f.send("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        let out = try f.output()
        #expect(out.hasPrefix("HTTP/1.1 503 "))
        #expect(out.contains("X-Cf-RouterError: route_table_unavailable"))
    }

    @Test func http10ClientsAreClosedAfterTheAnswer() throws {
        let f = try Fixture()
        try f.send("GET / HTTP/1.0\r\nHost: nope.example.com\r\n\r\n")
        #expect(try f.output().contains("Connection: close"))
        #expect(f.closing)
    }

    @Test func drainClosesIdleConnections() throws {
        let f = try Fixture()
        f.context.beginDrain()
        #expect(!f.channel.isActive)
    }

    @Test func clientConnectionCap() throws {
        let f = try Fixture { $0.maxClientConnections = 1 }
        let second = EmbeddedChannel(loop: f.loop)
        try second.pipeline.syncOperations.addHandler(ClientHandler(loop: f.context, https: false))
        try second.connect(to: SocketAddress(ipAddress: "192.0.2.2", port: 4001)).wait()
        #expect(!second.isActive)
        #expect(f.channel.isActive)
        #expect(f.context.metrics.rejectedConnections == 1)
        #expect(f.context.clientCount == 1)
    }

    @Test func idlePooledBackendConnectionsCloseOnUnexpectedBytes() throws {
        let f = try Fixture()
        let b = f.context.snapshot.host(host: "app.example.com")!.routes[0].backends[0]
        let channel = EmbeddedChannel(loop: f.loop)
        let connection = BackendHandler(backend: b, loop: f.context)
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(f.context.pool.put(connection, now: 0))
        #expect(f.context.pool.count == 1)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n"))
        #expect(!channel.isActive)
        #expect(f.context.pool.count == 0)
    }

    @Test func backendReadsWaitWhileTheClientCannotTakeData() throws {
        let f = try Fixture()
        let b = f.context.snapshot.host(host: "app.example.com")!.routes[0].backends[0]
        let channel = EmbeddedChannel(loop: f.loop)
        let connection = BackendHandler(backend: b, loop: f.context)
        try channel.pipeline.syncOperations.addHandler(ReadCounter())
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let counter = try channel.pipeline.syncOperations.handler(type: ReadCounter.self)
        connection.owner = f.handler
        f.handler.phase = .forwarding
        f.handler.clientWritable = false
        channel.read()
        #expect(counter.reads == 0)
        f.handler.clientWritable = true
        connection.resumeReading()
        #expect(counter.reads == 1)
        channel.read()
        #expect(counter.reads == 2)
        connection.owner = nil
    }
}

/// Counts `read` calls reaching the head of the pipeline.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}
