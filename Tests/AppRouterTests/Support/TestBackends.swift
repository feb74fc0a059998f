import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

@testable import AppRouter

/// Counters a test backend keeps (shared across its connections).
final class BackendStats: Sendable {
    let requests = Atomic<Int>(0)
    let connections = Atomic<Int>(0)
    let bytesReceived = Atomic<Int>(0)
    let bytesSent = Atomic<Int>(0)
}

/// A small app instance on loopback (NIOHTTP1, keep-alive):
/// - `/headers`: the request's header lines as the body;
/// - `/session`: sets `JSESSIONID`;
/// - `/upload`: counts the body and answers `received N`;
/// - `/download?bytes=N`: N bytes, written only while the connection is writable;
/// - `/chunked`: a chunked answer of three chunks;
/// - `/sleep?ms=N`: answers after N ms;
/// - anything else: its name.
/// Every answer carries `X-Backend: <name>`.
final class TestBackend: Sendable {
    let name: String
    let stats: BackendStats
    private let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(name: String, stats: BackendStats, channel: any Channel) {
        self.name = name
        self.stats = stats
        self.channel = channel
    }

    static func start(_ name: String) async throws -> TestBackend {
        let stats = BackendStats()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                stats.connections.wrappingAdd(1, ordering: .relaxed)
                return channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(AppHandler(name: name, stats: stats))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestBackend(name: name, stats: stats, channel: channel)
    }

    func stop() async { try? await channel.close() }
}

private final class AppHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let name: String
    let stats: BackendStats
    var head: HTTPRequestHead?
    var received = 0
    var remaining = 0
    var chunk = ByteBuffer(repeating: UInt8(ascii: "d"), count: 64 * 1024)

    init(name: String, stats: BackendStats) {
        self.name = name
        self.stats = stats
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            received = 0
        case .body(let body):
            received += body.readableBytes
            stats.bytesReceived.wrappingAdd(body.readableBytes, ordering: .relaxed)
        case .end:
            guard let head else { return }
            stats.requests.wrappingAdd(1, ordering: .relaxed)
            respond(context, head)
        }
    }

    private func query(_ head: HTTPRequestHead, _ name: String) -> Int? {
        URLComponents(string: head.uri)?.queryItems?.first { $0.name == name }?.value.flatMap(Int.init)
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let path = URLComponents(string: head.uri)?.path ?? head.uri
        var headers = HTTPHeaders()
        headers.add(name: "X-Backend", value: name)
        switch path {
        case "/headers":
            let body = head.headers.map { "\($0.name): \($0.value)\n" }.joined() + "target: \(head.uri)\n"
            send(context, .ok, headers, body)
        case "/session":
            headers.add(name: "Set-Cookie", value: "JSESSIONID=abc123; Path=/; HttpOnly")
            send(context, .ok, headers, name)
        case "/upload":
            send(context, .ok, headers, "received \(received)")
        case "/download":
            remaining = query(head, "bytes") ?? 0
            headers.add(name: "Content-Length", value: String(remaining))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            pump(context)
        case "/chunked":
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            for part in ["alpha-", "beta-", "gamma"] {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: part)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case "/sleep":
            let ms = Int64(query(head, "ms") ?? 100)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let sleptHeaders = headers
            context.eventLoop.scheduleTask(in: .milliseconds(ms)) {
                let (handler, context) = bound.value
                handler.send(context, .ok, sleptHeaders, "slept")
            }
        default:
            send(context, .ok, headers, name)
        }
    }

    private func pump(_ context: ChannelHandlerContext) {
        while remaining > 0 && context.channel.isWritable {
            let n = min(remaining, chunk.readableBytes)
            context.write(wrapOutboundOut(.body(.byteBuffer(chunk.getSlice(at: chunk.readerIndex, length: n)!))), promise: nil)
            remaining -= n
            stats.bytesSent.wrappingAdd(n, ordering: .relaxed)
        }
        if remaining == 0 && head != nil {
            head = nil
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if remaining > 0 && context.channel.isWritable { pump(context) }
        context.fireChannelWritabilityChanged()
    }

    private func send(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ headers: HTTPHeaders, _ body: String) {
        var headers = headers
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// A backend that speaks raw bytes: `onRequest` gets every complete request head (and the
/// connection) and decides what to write, including invalid HTTP.
final class RawBackend: Sendable {
    typealias Behaviour = @Sendable (_ head: String, _ channel: any Channel) -> Void
    let heads = Mutex<[String]>([])
    private let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }
    var requestCount: Int { heads.withLock { $0.count } }

    private init(channel: any Channel) { self.channel = channel }

    static func start(_ behaviour: @escaping Behaviour) async throws -> RawBackend {
        let boxRef = RawBackendBox()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawBackendHandler(record: { head in
                        boxRef.backend?.heads.withLock { $0.append(head) }
                    }, behaviour: behaviour))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let backend = RawBackend(channel: channel)
        boxRef.set(backend)
        return backend
    }

    func stop() async { try? await channel.close() }
}

private final class RawBackendBox: Sendable {
    private let value = Mutex<RawBackend?>(nil)
    var backend: RawBackend? { value.withLock { $0 } }
    func set(_ b: RawBackend) { value.withLock { $0 = b } }
}

private final class RawBackendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let record: @Sendable (String) -> Void
    let behaviour: RawBackend.Behaviour
    var buffer = ByteBuffer()
    var tunnel = false

    init(record: @escaping @Sendable (String) -> Void, behaviour: @escaping RawBackend.Behaviour) {
        self.record = record
        self.behaviour = behaviour
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if tunnel {
            context.writeAndFlush(NIOAny(bytes), promise: nil)
            return
        }
        buffer.writeBuffer(&bytes)
        while let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes),
              let end = text.range(of: "\r\n\r\n") {
            let head = String(text[..<end.upperBound])
            buffer.moveReaderIndex(forwardBy: head.utf8.count)
            // A declared body is skipped so the next request parses.
            if let line = head.components(separatedBy: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
               let n = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
                buffer.moveReaderIndex(forwardBy: min(n, buffer.readableBytes))
            }
            record(head)
            if head.lowercased().contains("upgrade: websocket") { tunnel = true }
            behaviour(head, context.channel)
            if tunnel {
                if buffer.readableBytes > 0 { context.writeAndFlush(NIOAny(buffer), promise: nil) }
                buffer.clear()
                return
            }
        }
    }
}
