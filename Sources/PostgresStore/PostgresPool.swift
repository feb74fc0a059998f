import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A bounded pool of libpq connections whose blocking calls run on a `NIOThreadPool`.
public final class PostgresPool: Sendable {
    private let configuration: PostgresConfiguration
    private let threadPool: NIOThreadPool
    /// Set when the pool started its own thread pool and so must shut it down.
    private let ownsThreadPool: Bool
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var idle: [ConnectionBox] = []
        /// Connections open or being opened, idle or leased; never more than `poolSize`.
        var open = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Lease, any Error>)] = []
        var nextID: UInt64 = 0
        var listeners: [UInt64: PostgresListener] = [:]
        var closed = false
    }

    /// What `acquire` grants: an idle connection, or the right to open one.
    private enum Lease: Sendable {
        case idle(ConnectionBox)
        case newConnection
    }

    /// Creates a pool that runs libpq calls on `threadPool` (which the caller starts and shuts down).
    public init(configuration: PostgresConfiguration, threadPool: NIOThreadPool, logger: Logger) {
        precondition(configuration.poolSize > 0, "poolSize must be positive")
        self.configuration = configuration
        self.threadPool = threadPool
        self.ownsThreadPool = false
        self.logger = logger
    }

    /// Creates a pool with its own thread pool of `poolSize` threads, shut down by `shutdown()`.
    public init(configuration: PostgresConfiguration, logger: Logger) {
        precondition(configuration.poolSize > 0, "poolSize must be positive")
        self.configuration = configuration
        // One thread per connection: a leased connection is only ever used by one blocking closure.
        self.threadPool = NIOThreadPool(numberOfThreads: configuration.poolSize)
        self.threadPool.start()
        self.ownsThreadPool = true
        self.logger = logger
    }

    /// Runs `body` on a thread-pool thread with a pooled connection (not in a transaction).
    ///
    /// If the pooled connection turns out dead on the closure's first statement (e.g. after a
    /// server restart), the closure runs once more on a fresh connection; never after a statement succeeded.
    /// The closure is escaping because the thread pool may keep its work item alive a moment
    /// after the result is delivered.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await self.lease(body)
    }

    /// BEGIN; body; COMMIT — ROLLBACK automatically if body throws (rethrowing the body's error).
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withConnection { connection in
            try connection.query("BEGIN")
            let value: T
            do {
                value = try body(connection)
            } catch {
                if !connection.isBroken { _ = try? connection.query("ROLLBACK") }
                throw error
            }
            try connection.query("COMMIT")
            return value
        }
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) async throws -> PostgresResult {
        try await withConnection { connection in try connection.query(sql, parameters) }
    }

    /// Sends a notification with `pg_notify(channel, payload)`.
    public func notify(channel: String, payload: String) async throws {
        try await query("SELECT pg_notify($1, $2)", [channel, payload])
    }

    /// LISTENs on `channels` over a dedicated connection and yields notifications; after a
    /// reconnect it yields `.reconnected`. Ends when the pool shuts down or the consumer stops;
    /// ends at once if a channel name is not `[a-z_][a-z0-9_]*`.
    public func listen(channels: [String]) -> AsyncStream<PostgresNotificationEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: PostgresNotificationEvent.self)
        startListener(channels: channels, continuation: continuation, ready: nil)
        return stream
    }

    /// Like `listen(channels:)`, but returns only once LISTEN is in effect, so nothing sent
    /// afterwards is missed; throws if a channel name is invalid or the first connection fails.
    public func startListening(channels: [String]) async throws -> AsyncStream<PostgresNotificationEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: PostgresNotificationEvent.self)
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, any Error>) in
            startListener(channels: channels, continuation: continuation) { result in ready.resume(with: result) }
        }
        return stream
    }

    /// Closes all connections and ends LISTEN streams; later calls throw `.poolClosed`.
    public func shutdown() async {
        let (idle, waiters, listeners) = state.withLock { state in
            state.closed = true
            let taken = (state.idle, state.waiters, Array(state.listeners.values))
            state.open -= state.idle.count
            state.idle = []
            state.waiters = []
            state.listeners = [:]
            return taken
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: PostgresError(kind: .poolClosed, message: "the pool was shut down"))
        }
        for listener in listeners { listener.stop() }
        // Dropping `idle` here runs PQfinish, which only queues a Terminate message and does not wait.
        logger.debug("postgres pool shut down", metadata: ["postgres.closed_idle": "\(idle.count)"])
        if ownsThreadPool {
            try? await threadPool.shutdownGracefully()
        }
    }

    // MARK: Leasing

    private func lease<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let holder = LeaseHolder()
        if case .idle(let box) = try await acquire() { holder.connection = box.connection }
        defer { release(holder.connection) }
        do {
            return try await threadPool.runIfActive { [configuration, logger] in
                try Self.run(body, holder: holder, configuration: configuration, logger: logger)
            }
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw PostgresError(kind: .poolClosed, message: "the thread pool is not running")
        }
    }

    /// Runs on the thread pool: opens a connection if needed, runs the closure, and retries once on a dead pooled one.
    private static func run<T>(
        _ body: (PostgresConnection) throws -> T, holder: LeaseHolder, configuration: PostgresConfiguration, logger: Logger
    ) throws -> T {
        let reused = holder.connection != nil
        let connection = try holder.connection ?? PostgresConnection.connect(configuration: configuration, logger: logger)
        holder.connection = connection
        connection.beginLease()
        do {
            let value = try body(connection)
            holder.finish()
            return value
        } catch {
            guard reused, connection.firstStatementFoundDead else {
                holder.finish()
                throw error
            }
            logger.debug("pooled postgres connection was dead; retrying on a new connection")
            holder.connection = nil
            let fresh = try PostgresConnection.connect(configuration: configuration, logger: logger)
            holder.connection = fresh
            defer { holder.finish() }
            return try body(fresh)
        }
    }

    private func acquire() async throws -> Lease {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                let granted: Result<Lease, PostgresError>? = state.withLock { state in
                    if state.closed { return .failure(PostgresError(kind: .poolClosed, message: "the pool was shut down")) }
                    if let box = state.idle.popLast() { return .success(.idle(box)) }
                    if state.open < configuration.poolSize {
                        state.open += 1
                        return .success(.newConnection)
                    }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let granted { continuation.resume(with: granted) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Lease, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Returns a healthy connection (or just its slot, when it was discarded) to the pool or the first waiter.
    private func release(_ connection: PostgresConnection?) {
        let box = connection.map(ConnectionBox.init)
        let handOver: (CheckedContinuation<Lease, any Error>, Lease)? = state.withLock { state in
            if state.closed {
                state.open -= 1
                return nil
            }
            if !state.waiters.isEmpty {
                let waiter = state.waiters.removeFirst()
                return (waiter.continuation, box.map(Lease.idle) ?? .newConnection)
            }
            if let box { state.idle.append(box) } else { state.open -= 1 }
            return nil
        }
        if let (continuation, lease) = handOver { continuation.resume(returning: lease) }
    }

    // MARK: Listeners

    private func startListener(
        channels: [String],
        continuation: AsyncStream<PostgresNotificationEvent>.Continuation,
        ready: (@Sendable (Result<Void, PostgresError>) -> Void)?
    ) {
        let listener = PostgresListener(
            channels: channels, configuration: configuration, logger: logger, continuation: continuation, ready: ready
        )
        let id: UInt64? = state.withLock { state in
            guard !state.closed else { return nil }
            state.nextID += 1
            state.listeners[state.nextID] = listener
            return state.nextID
        }
        guard let id else {
            listener.fail(PostgresError(kind: .poolClosed, message: "the pool was shut down"))
            return
        }
        listener.start { [weak self] in
            self?.state.withLock { _ = $0.listeners.removeValue(forKey: id) }
        }
    }
}

/// Lets a leased connection cross from the async caller to one thread-pool thread and back.
///
/// `@unchecked` is sound because the connection is touched by one thread at a time: the
/// continuation that resumes the caller orders the thread's writes before the caller's reads.
private final class LeaseHolder: @unchecked Sendable {
    var connection: PostgresConnection?

    /// Keeps the connection only if it can be reused.
    func finish() {
        if let connection, !connection.resetForReuse() { self.connection = nil }
    }
}

/// An idle connection owned by the pool; only the pool's lock or a single lease touches it.
struct ConnectionBox: @unchecked Sendable {
    let connection: PostgresConnection
}
