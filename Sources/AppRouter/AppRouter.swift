import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PlatformClient
import ServiceLifecycle
import Synchronization

/// The addresses the router listens on once it runs.
public struct RouterAddresses: Sendable {
    /// Plain HTTP listener port.
    public var http: Int
    /// TLS listener port, nil when TLS is off.
    public var https: Int?
    /// `/health` and `/metrics` port.
    public var status: Int
}

/// The HTTP router (SwiftNIO, HTTP/1.1): routes requests by Host and path prefix to the
/// routable instances in the CC's route table, with keep-alive on both sides, retries on
/// connect failures, streaming with back-pressure, sticky sessions and WebSocket upgrades.
/// Run it as a ServiceLifecycle service; graceful shutdown fails `/health`, stops accepting,
/// lets requests in flight finish (up to `router.drain_timeout_seconds`), then closes.
public final class AppRouter: Service, Sendable {
    private let config: RouterConfig
    private let logger: Logger
    private let source: any RouteTableSource
    private let ownedClient: ComponentClient?
    private let ready = ReadySignal()

    /// A router that polls the CC named in `config` (or `source`, e.g. a stub in tests).
    public init(config: RouterConfig, logger: Logger, source: (any RouteTableSource)? = nil) {
        self.config = config
        self.logger = logger
        if let source {
            self.source = source
            self.ownedClient = nil
        } else {
            let client = ComponentClient(api: config.controllerURL, credential: config.credential, component: "router",
                                         timeoutSeconds: 15)
            self.source = client
            self.ownedClient = client
        }
    }

    /// Waits until the listeners are bound and returns their ports.
    public func listening() async throws -> RouterAddresses {
        try await ready.wait()
    }

    public func run() async throws {
        let threads = config.threads > 0 ? config.threads : System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let runtime: RouterRuntime
        do {
            runtime = try await RouterRuntime.start(config: config, group: group, logger: logger)
        } catch {
            ready.fail(error)
            try? await group.shutdownGracefully()
            throw error
        }
        ready.succeed(runtime.addresses)
        logger.info("router listening", metadata: [
            "http": .string("\(config.listenHost):\(runtime.addresses.http)"),
            "https": .string(runtime.addresses.https.map { "\(config.tlsListenHost ?? ""):\($0)" } ?? "off"),
            "status": .string("\(config.statusHost):\(runtime.addresses.status)"),
            "controller": .string(config.controllerURL), "threads": .stringConvertible(threads),
        ])
        let tables = RouteTableService(source: source, pollSeconds: config.routeTablePollSeconds,
                                       routerID: config.routerID, listen: config.reportedListen(port: runtime.addresses.http),
                                       useHostAddress: config.backendAddress == .host, status: runtime.tableStatus,
                                       logger: logger, publish: { runtime.publish($0) })
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await tables.run() }
            // Returns on graceful shutdown, throws when the service is cancelled instead.
            let graceful = (try? await gracefulShutdown()) != nil
            await runtime.drain(graceful: graceful, wait: .seconds(config.drainWaitSeconds),
                                timeout: .seconds(config.drainTimeoutSeconds), logger: logger)
            tasks.cancelAll()
        }
        try? await ownedClient?.shutdown()
        try? await group.shutdownGracefully()
        logger.info("router stopped")
    }
}

/// A one-shot signal carrying the bound addresses (or the bind error).
final class ReadySignal: Sendable {
    private enum State {
        case waiting([CheckedContinuation<RouterAddresses, any Error>])
        case done(Result<RouterAddresses, any Error>)
    }

    private let state = Mutex(State.waiting([]))

    func wait() async throws -> RouterAddresses {
        try await withCheckedThrowingContinuation { continuation in
            let result: Result<RouterAddresses, any Error>? = state.withLock { state in
                switch state {
                case .waiting(var list):
                    list.append(continuation)
                    state = .waiting(list)
                    return nil
                case .done(let result):
                    return result
                }
            }
            if let result { continuation.resume(with: result) }
        }
    }

    func succeed(_ addresses: RouterAddresses) { complete(.success(addresses)) }
    func fail(_ error: any Error) { complete(.failure(error)) }

    private func complete(_ result: Result<RouterAddresses, any Error>) {
        let waiting: [CheckedContinuation<RouterAddresses, any Error>] = state.withLock { state in
            guard case .waiting(let list) = state else { return [] }
            state = .done(result)
            return list
        }
        for continuation in waiting { continuation.resume(with: result) }
    }
}

/// The running router: event loops with their contexts, listeners, status server.
final class RouterRuntime: Sendable {
    let loops: [NIOLoopBound<LoopContext>]
    private let loopIndex: [ObjectIdentifier: Int]
    let shared: RouterShared
    let tableStatus = RouteTableStatusBox()
    let addresses: RouterAddresses
    private let listeners: [any Channel]
    private let statusChannel: any Channel
    private let draining = Atomic<Bool>(false)

    private init(loops: [NIOLoopBound<LoopContext>], loopIndex: [ObjectIdentifier: Int], shared: RouterShared,
                 addresses: RouterAddresses, listeners: [any Channel], statusChannel: any Channel) {
        self.loops = loops
        self.loopIndex = loopIndex
        self.shared = shared
        self.addresses = addresses
        self.listeners = listeners
        self.statusChannel = statusChannel
    }

    /// Builds the per-loop contexts and binds the listeners.
    static func start(config: RouterConfig, group: MultiThreadedEventLoopGroup, logger: Logger) async throws -> RouterRuntime {
        let sink = try AccessLogSink.open(config.accessLog)
        let shared = RouterShared(accessLog: sink, logger: logger)
        let settings = ProxySettings(config)
        var loops: [NIOLoopBound<LoopContext>] = []
        var loopIndex: [ObjectIdentifier: Int] = [:]
        for loop in group.makeIterator() {
            let bound = try await loop.submit {
                let context = LoopContext(eventLoop: loop, settings: settings, shared: shared)
                context.start()
                return NIOLoopBound(context, eventLoop: loop)
            }.get()
            loopIndex[ObjectIdentifier(loop)] = loops.count
            loops.append(bound)
        }
        let contexts = loops
        let index = loopIndex
        let tls = try config.tlsCertificateFile.map { cert in
            try Self.tlsContext(certificate: cert, key: config.tlsKeyFile ?? "")
        }

        func listener(host: String, port: Int, tls: NIOSSLContext?) async throws -> any Channel {
            do {
                return try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 1024)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.socketOption(.so_keepalive), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            guard let i = index[ObjectIdentifier(channel.eventLoop)] else {
                                throw RouterError("connection accepted on an event loop the router does not know")
                            }
                            try RouterPipeline.configureClientChannel(channel, loop: contexts[i].value, tls: tls)
                        }
                    }
                    .bind(host: host, port: port).get()
            } catch {
                throw RouterError("cannot listen on \(host):\(port)", cause: error)
            }
        }

        var listeners: [any Channel] = []
        do {
            let http = try await listener(host: config.listenHost, port: config.listenPort, tls: nil)
            listeners.append(http)
            var httpsPort: Int?
            if let tls, let host = config.tlsListenHost {
                let https = try await listener(host: host, port: config.tlsListenPort, tls: tls)
                listeners.append(https)
                httpsPort = https.localAddress?.port
            }
            let runtimeBox = RuntimeBox()
            let status: any Channel
            do {
                status = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                            guard let runtime = runtimeBox.runtime else { throw RouterError("router not started yet") }
                            try channel.pipeline.syncOperations.addHandler(StatusHandler(runtime: runtime))
                        }
                    }
                    .bind(host: config.statusHost, port: config.statusPort).get()
            } catch {
                throw RouterError("cannot listen on \(config.statusHost):\(config.statusPort) (status)", cause: error)
            }
            let addresses = RouterAddresses(http: http.localAddress?.port ?? config.listenPort, https: httpsPort,
                                            status: status.localAddress?.port ?? config.statusPort)
            let runtime = RouterRuntime(loops: loops, loopIndex: loopIndex, shared: shared, addresses: addresses,
                                        listeners: listeners, statusChannel: status)
            runtimeBox.set(runtime)
            return runtime
        } catch {
            for channel in listeners { try? await channel.close() }
            for loop in loops { try? await loop.eventLoop.submit { loop.value.stop() }.get() }
            throw error
        }
    }

    /// A server TLS context from PEM files.
    static func tlsContext(certificate: String, key: String) throws -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RouterError("cannot load the TLS certificate \(certificate) and key \(key)", cause: error)
        }
    }

    /// Hands a new route table to every loop; each swaps it in on its own thread.
    func publish(_ snapshot: RouteSnapshot) {
        for loop in loops {
            loop.eventLoop.execute { loop.value.snapshot = snapshot }
        }
    }

    /// The answer of `/health`.
    func health() -> (ok: Bool, text: String) {
        if draining.load(ordering: .relaxed) { return (false, "draining") }
        let status = tableStatus.value
        if status.version < 0 { return (false, "no route table yet") }
        return (true, status.stale ? "ok (cloud controller unreachable, routing with route table version \(status.version))" : "ok")
    }

    /// Every loop's counters added up, as Prometheus text.
    func metricsText(on eventLoop: any EventLoop) -> EventLoopFuture<String> {
        let futures = loops.map { loop in loop.eventLoop.submit { loop.value.metrics } }
        return EventLoopFuture.whenAllSucceed(futures, on: eventLoop).map { all in
            var total = LoopMetrics()
            for m in all { total.add(m) }
            return MetricsText.render(total, status: self.tableStatus.value, now: Int64(NIODeadline.now().uptimeNanoseconds),
                                      openConnections: self.shared.openClientConnections.load(ordering: .relaxed),
                                      draining: self.draining.load(ordering: .relaxed))
        }
    }

    /// Graceful shutdown: fail `/health`, wait `wait` for load balancers to notice, stop
    /// accepting, let requests in flight finish within `timeout`, then close everything.
    func drain(graceful: Bool, wait: Duration, timeout: Duration, logger: Logger) async {
        draining.store(true, ordering: .relaxed)
        if graceful && wait > .zero { try? await Task.sleep(for: wait) }
        for channel in listeners { try? await channel.close() }
        for loop in loops { loop.eventLoop.execute { loop.value.beginDrain() } }
        let open = { self.shared.openClientConnections.load(ordering: .relaxed) }
        if graceful {
            logger.info("draining", metadata: ["connections": .stringConvertible(open())])
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: timeout)
            while open() > 0 && clock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if open() > 0 {
                logger.warning("drain timeout: closing connections still open", metadata: ["connections": .stringConvertible(open())])
            }
        }
        for loop in loops {
            try? await loop.eventLoop.submit {
                loop.value.closeAll()
                loop.value.stop()
            }.get()
        }
        try? await statusChannel.close()
    }
}

/// Lets the status server's initializer reach the runtime built after it was bound.
private final class RuntimeBox: Sendable {
    private let state = Mutex<RouterRuntime?>(nil)
    var runtime: RouterRuntime? { state.withLock { $0 } }
    func set(_ runtime: RouterRuntime) { state.withLock { $0 = runtime } }
}
