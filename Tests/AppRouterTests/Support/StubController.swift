import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import PlatformModels
import Synchronization

@testable import AppRouter

/// A stand-in for the Cloud Controller's route-table endpoint: `GET /internal/v1/routes?after=V&wait=S`
/// with `Authorization: component <credential>`, answering at once when the version differs
/// from `after` and otherwise holding the request until `update` commits a new table (or
/// `wait` runs out) — the CC's LISTEN/NOTIFY long-poll, in memory.
final class StubController: Sendable {
    static let credential = "stub-component-credential"

    private struct State {
        var table: RouteTable
        var waiters: [UInt64: EventLoopPromise<Void>] = [:]
        var nextWaiter: UInt64 = 0
        var requests = 0
        /// Every request's URI, in arrival order.
        var uris: [String] = []
        var children: [any Channel] = []
    }

    private let state: Mutex<State>
    private let channel: any Channel
    let port: Int

    var url: String { "http://127.0.0.1:\(port)" }
    var requests: Int { state.withLock { $0.requests } }
    var uris: [String] { state.withLock { $0.uris } }
    /// Polls held until the table changes (or their wait runs out).
    var waiting: Int { state.withLock { $0.waiters.count } }

    private init(table: RouteTable, channel: any Channel) {
        self.state = Mutex(State(table: table))
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    static func start(_ table: RouteTable) async throws -> StubController {
        let box = StubBox()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    guard let stub = box.stub else { throw RouterError("stub not ready") }
                    stub.adopt(channel)
                    try channel.pipeline.syncOperations.addHandler(StubHandler(stub: stub))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let stub = StubController(table: table, channel: channel)
        box.set(stub)
        return stub
    }

    private func adopt(_ child: any Channel) {
        state.withLock { $0.children.append(child) }
    }

    /// Commits a new table and wakes every waiting poll (the CC's NOTIFY).
    func update(_ table: RouteTable) {
        let waiters = state.withLock { s -> [EventLoopPromise<Void>] in
            s.table = table
            let list = Array(s.waiters.values)
            s.waiters = [:]
            return list
        }
        for waiter in waiters { waiter.succeed() }
    }

    var table: RouteTable { state.withLock { $0.table } }

    /// The CC goes away: the listener and every connection close.
    func stop() async {
        try? await channel.close()
        let children = state.withLock { $0.children }
        for child in children { try? await child.close() }
    }

    fileprivate func answer(uri: String, authorization: String?, on eventLoop: any EventLoop) -> EventLoopFuture<(HTTPResponseStatus, Data)> {
        state.withLock {
            $0.requests += 1
            $0.uris.append(uri)
        }
        guard authorization == "component \(Self.credential)" else {
            return eventLoop.makeSucceededFuture((.unauthorized, Data(#"{"errors":[{"code":10002,"title":"CF-NotAuthenticated","detail":"component credential required"}]}"#.utf8)))
        }
        let components = URLComponents(string: uri)
        guard components?.path == "/internal/v1/routes" else { return eventLoop.makeSucceededFuture((.notFound, Data())) }
        let items = components?.queryItems ?? []
        let after = items.first { $0.name == "after" }?.value.flatMap(Int.init)
        let wait = min(60, items.first { $0.name == "wait" }?.value.flatMap(Int.init) ?? 30)
        let promise = eventLoop.makePromise(of: Void.self)
        let id: UInt64? = state.withLock { s in
            if after == nil || after != s.table.version { return nil }
            s.nextWaiter += 1
            s.waiters[s.nextWaiter] = promise
            return s.nextWaiter
        }
        if let id {
            eventLoop.scheduleTask(in: .seconds(Int64(wait))) { [self] in
                let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.succeed()
            }
        } else {
            promise.succeed()
        }
        return promise.futureResult.flatMapThrowing { [self] in
            (.ok, try JSONEncoder().encode(self.table))
        }
    }
}

private final class StubBox: Sendable {
    private let value = Mutex<StubController?>(nil)
    var stub: StubController? { value.withLock { $0 } }
    func set(_ stub: StubController) { value.withLock { $0 = stub } }
}

private final class StubHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let stub: StubController
    var head: HTTPRequestHead?

    init(stub: StubController) { self.stub = stub }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            stub.answer(uri: head.uri, authorization: head.headers.first(name: "Authorization"), on: context.eventLoop)
                .whenSuccess { status, body in
                    let context = bound.value
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: "application/json")
                    headers.add(name: "Content-Length", value: String(body.count))
                    context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                    context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
                    context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
                }
        }
    }
}

/// An in-memory route-table source for tests that do not need HTTP: same long-poll contract.
final class MemoryRouteSource: RouteTableSource {
    private let state: Mutex<RouteTable>

    init(_ table: RouteTable) { state = Mutex(table) }

    func update(_ table: RouteTable) { state.withLock { $0 = table } }

    func routeTable(after version: Int?, waitSeconds: Int) async throws -> RouteTable {
        let deadline = ContinuousClock.now.advanced(by: .seconds(waitSeconds))
        while true {
            let table = state.withLock { $0 }
            if table.version != version || ContinuousClock.now >= deadline { return table }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
