import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The settings handlers need, in the units they use.
struct ProxySettings: Sendable {
    var balancer: Balancer
    var retry: RetryPolicy
    var dialTimeout: TimeAmount
    var backendResponseTimeout: Int64
    var clientIdleTimeout: Int64
    var headerReadTimeout: Int64
    var backendIdleTimeout: Int64
    var maxHeaderBytes: Int
    var maxHeaderFields: Int
    var maxClientConnections: Int
    var maxIdlePerBackend: Int

    init(_ config: RouterConfig) {
        balancer = Balancer(strategy: config.balancing, maxInFlightPerBackend: config.maxConnectionsPerBackend)
        retry = RetryPolicy(maxAttempts: config.maxAttempts, benchNanoseconds: config.benchSeconds * 1_000_000_000)
        dialTimeout = .milliseconds(config.dialTimeoutMilliseconds)
        backendResponseTimeout = config.backendResponseTimeoutSeconds * 1_000_000_000
        clientIdleTimeout = config.clientIdleTimeoutSeconds * 1_000_000_000
        headerReadTimeout = config.headerReadTimeoutMilliseconds * 1_000_000
        backendIdleTimeout = config.backendIdleTimeoutSeconds * 1_000_000_000
        maxHeaderBytes = config.maxHeaderBytes
        maxHeaderFields = config.maxHeaderFields
        maxClientConnections = config.maxClientConnections
        maxIdlePerBackend = config.maxIdleConnectionsPerBackend
    }
}

/// State every loop shares: the connection count behind the client cap and the access-log sink.
final class RouterShared: Sendable {
    let openClientConnections = Atomic<Int>(0)
    let accessLog: AccessLogSink
    let logger: Logger

    init(accessLog: AccessLogSink, logger: Logger) {
        self.accessLog = accessLog
        self.logger = logger
    }
}

/// Everything one event loop owns: its copy of the route table, its backend connection pool,
/// counters, access-log buffer and open client connections. Touched only on its loop, so the
/// hot path takes no lock and no atomic for any of it.
final class LoopContext {
    let eventLoop: any EventLoop
    let settings: ProxySettings
    let shared: RouterShared
    var logger: Logger { shared.logger }
    /// The route table this loop routes with; replaced whole when a new version arrives.
    var snapshot: RouteSnapshot = .empty
    let pool: BackendPool
    var metrics = LoopMetrics()
    var accessLog = AccessLogBuffer()
    var clock = WallClockCache()
    var ids = RequestIDGenerator()
    /// Uptime (ns), refreshed every tick: deadlines need no clock read per event.
    private(set) var now: Int64
    private(set) var draining = false
    private var clients: [ClientHandler] = []
    private var tickTask: RepeatedTask?
    private var ticks = 0

    static let tick = TimeAmount.milliseconds(100)

    init(eventLoop: any EventLoop, settings: ProxySettings, shared: RouterShared) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.shared = shared
        self.pool = BackendPool(maxIdlePerBackend: settings.maxIdlePerBackend)
        self.now = Int64(NIODeadline.now().uptimeNanoseconds)
    }

    /// Starts the loop's timer: deadlines, idle pool connections, access-log flushes.
    func start() {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        tickTask = eventLoop.scheduleRepeatedTask(initialDelay: Self.tick, delay: Self.tick) { _ in
            bound.value.onTick()
        }
    }

    func stop() {
        tickTask?.cancel()
        tickTask = nil
        accessLog.flush(to: shared.accessLog)
    }

    /// A precise uptime for latencies; also refreshes the coarse one.
    @inline(__always)
    func preciseNow() -> Int64 {
        now = Int64(NIODeadline.now().uptimeNanoseconds)
        return now
    }

    private func onTick() {
        now = Int64(NIODeadline.now().uptimeNanoseconds)
        ticks &+= 1
        var i = 0
        while i < clients.count {
            let client = clients[i]
            client.checkDeadline(now: now)
            // A client that closed removed itself; only advance past one that is still there.
            if i < clients.count && clients[i] === client { i += 1 }
        }
        if ticks % 10 == 0 { pool.closeIdle(olderThan: now - settings.backendIdleTimeout, snapshot: snapshot) }
        accessLog.flush(to: shared.accessLog)
    }

    // MARK: Client registry

    func register(_ client: ClientHandler) {
        client.registryIndex = clients.count
        clients.append(client)
    }

    func unregister(_ client: ClientHandler) {
        let index = client.registryIndex
        guard index >= 0, index < clients.count, clients[index] === client else { return }
        let last = clients.removeLast()
        if index < clients.count {
            clients[index] = last
            last.registryIndex = index
        }
        client.registryIndex = -1
    }

    var clientCount: Int { clients.count }

    // MARK: Drain

    /// Graceful shutdown: idle connections close now, busy ones after their current answer.
    func beginDrain() {
        draining = true
        for client in clients { client.drain() }
    }

    /// The end of the drain period: whatever is still open is closed.
    func closeAll() {
        for client in clients { client.forceClose() }
        pool.closeAll()
    }
}

/// Idle keep-alive connections to backends, per instance, on one loop (bounded per instance;
/// connections idle longer than `router.backend_idle_timeout_seconds` are closed).
final class BackendPool {
    private var idle: [Int: [BackendHandler]] = [:]
    let maxIdlePerBackend: Int

    init(maxIdlePerBackend: Int) {
        self.maxIdlePerBackend = maxIdlePerBackend
    }

    /// The most recently used idle connection to `backend`, if any.
    @inline(__always)
    func take(_ backend: Backend) -> BackendHandler? {
        while let connection = idle[backend.id]?.popLast() {
            if connection.isOpen { return connection }
        }
        return nil
    }

    /// Keeps a connection for reuse; false when the instance's share is full (the caller closes it).
    func put(_ connection: BackendHandler, now: Int64) -> Bool {
        guard maxIdlePerBackend > 0 else { return false }
        var accepted = false
        idle[connection.backend.id, default: []].withAppend(limit: maxIdlePerBackend) { list in
            list.append(connection)
            accepted = true
        }
        if accepted { connection.idleSince = now }
        return accepted
    }

    /// Forgets a connection that closed while idle.
    func remove(_ connection: BackendHandler) {
        let id = connection.backend.id
        guard let index = idle[id]?.firstIndex(where: { $0 === connection }) else { return }
        idle[id]?.remove(at: index)
        if idle[id]?.isEmpty == true { idle[id] = nil }
    }

    /// Closes every idle connection to `backend` (after one turned out stale).
    func closeIdle(to backend: Backend) {
        guard let list = idle.removeValue(forKey: backend.id) else { return }
        for connection in list { connection.close() }
    }

    /// Closes connections idle since before `cutoff`, and those to instances no longer routed.
    func closeIdle(olderThan cutoff: Int64, snapshot: RouteSnapshot) {
        var closing: [BackendHandler] = []
        for (id, list) in idle {
            let routed = snapshot.backendIDs.contains(id)
            let keep = list.filter { routed && $0.idleSince >= cutoff && $0.isOpen }
            if keep.count != list.count {
                closing.append(contentsOf: list.filter { c in !keep.contains { $0 === c } })
                idle[id] = keep.isEmpty ? nil : keep
            }
        }
        for connection in closing { connection.close() }
    }

    func closeAll() {
        let all = idle.values.flatMap { $0 }
        idle = [:]
        for connection in all { connection.close() }
    }

    var count: Int { idle.values.reduce(0) { $0 + $1.count } }
}

extension Array {
    /// Runs `body` only while the array holds fewer than `limit` elements.
    @inline(__always)
    mutating func withAppend(limit: Int, _ body: (inout [Element]) -> Void) {
        if count < limit { body(&self) }
    }
}
