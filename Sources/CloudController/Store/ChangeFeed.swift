import Logging
import PlatformModels
import PostgresStore
import ServiceLifecycle
import Synchronization

/// One `LISTEN` connection per controller, fanned out to the requests waiting on it.
///
/// Long-polls (assignments, the route table) and followed log streams subscribe to a channel
/// (and optionally one payload, e.g. an agent id or app guid), read the database, and only then
/// wait: a notification that lands between the read and the wait is remembered, so nothing is
/// missed, and a waiting request holds no database connection.
///
/// The listener starts with the first subscription (so a router built for tests needs no
/// service to run it). After the listener reconnects every waiter is woken to re-read, since
/// notifications may have been lost in between. `stop()` (graceful shutdown) wakes everyone for
/// good; a wait also ends early when the surrounding service group shuts down gracefully.
final class ChangeFeed: Sendable {
    /// Why a wait ended.
    enum Wake: Sendable, Equatable {
        /// A matching notification arrived (or the listener reconnected): re-read.
        case notified
        /// The wait's timeout passed.
        case timedOut
        /// The controller is shutting down: answer and finish.
        case stopped
    }

    /// The channels this controller listens on.
    static let channels = [AgentProtocol.assignmentsChannel, AgentProtocol.logsChannel, RouteTableFeed.channel,
                           StagingProtocol.stagingChannel, HealthProtocol.channel]

    private let pool: PostgresPool
    private let logger: Logger
    private let state = Mutex(State())

    private enum Phase {
        case idle
        /// `startListening` is in flight; these subscribers wait for its outcome.
        case starting([CheckedContinuation<Void, any Error>])
        case running(Task<Void, Never>)
        case stopped
    }

    private struct Waiter {
        var channel: String
        var payload: String?
        /// A wake-up arrived while nobody was parked; the next wait returns at once.
        var pending: Wake?
        var continuation: CheckedContinuation<Wake, Never>?
        var cancelled = false
    }

    private struct State {
        var phase: Phase = .idle
        var waiters: [UInt64: Waiter] = [:]
        var nextID: UInt64 = 0
    }

    init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// Number of registered subscriptions (for tests and metrics).
    var subscriberCount: Int { state.withLock { $0.waiters.count } }

    /// Registers interest in `channel` (and `payload`, if given) before the caller reads the
    /// database. Throws 503 when the listener cannot be started (database unavailable).
    func subscribe(channel: String, payload: String? = nil) async throws -> Subscription {
        try await ensureListening()
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            var waiter = Waiter(channel: channel, payload: payload)
            if case .stopped = state.phase { waiter.pending = .stopped }
            state.waiters[state.nextID] = waiter
            return state.nextID
        }
        return Subscription(feed: self, id: id)
    }

    /// Ends the listener and wakes every waiter with `.stopped`; later subscriptions return at once.
    func stop() {
        let (task, continuations, starters) = state.withLock { state -> (Task<Void, Never>?, [CheckedContinuation<Wake, Never>], [CheckedContinuation<Void, any Error>]) in
            var task: Task<Void, Never>?
            var starters: [CheckedContinuation<Void, any Error>] = []
            switch state.phase {
            case .running(let running): task = running
            case .starting(let waiting): starters = waiting
            case .idle, .stopped: break
            }
            state.phase = .stopped
            return (task, Self.wakeAll(&state, .stopped), starters)
        }
        task?.cancel()
        for continuation in continuations { continuation.resume(returning: .stopped) }
        for starter in starters { starter.resume() }
    }

    // MARK: The listener

    private func ensureListening() async throws {
        enum Next { case ready, start, wait }
        while true {
            let next = state.withLock { state -> Next in
                switch state.phase {
                case .running, .stopped: return .ready
                case .starting: return .wait
                case .idle:
                    state.phase = .starting([])
                    return .start
                }
            }
            switch next {
            case .ready:
                return
            case .wait:
                // Resumed (or failed) when the start in flight finishes; then look again.
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let resumeNow: Bool = state.withLock { state in
                        guard case .starting(var waiting) = state.phase else { return true }
                        waiting.append(continuation)
                        state.phase = .starting(waiting)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            case .start:
                try await startListener()
                return
            }
        }
    }

    private func startListener() async throws {
        do {
            let stream = try await pool.startListening(channels: Self.channels)
            // The pump belongs to the feed, not to a request: `stop()` cancels it, and it ends by
            // itself when the pool shuts down (the stream finishes).
            let task = Task { [weak self] in
                for await event in stream {
                    guard let self else { return }
                    self.deliver(event)
                }
                self?.listenerEnded()
            }
            let starters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
                guard case .starting(let waiting) = state.phase else {
                    task.cancel()  // stopped while starting
                    return []
                }
                state.phase = .running(task)
                return waiting
            }
            for starter in starters { starter.resume() }
            logger.debug("change feed listening", metadata: ["postgres.channels": "\(Self.channels.joined(separator: ","))"])
        } catch {
            let starters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
                guard case .starting(let waiting) = state.phase else { return [] }
                state.phase = .idle
                return waiting
            }
            let failure: any Error = (error as? PostgresError).map(Database.map) ?? error
            for starter in starters { starter.resume(throwing: failure) }
            logger.warning("change feed could not listen", metadata: ["error": "\(error)"])
            throw failure
        }
    }

    /// True while the LISTEN connection is up (for tests).
    var isListening: Bool {
        state.withLock { state in
            if case .running = state.phase { return true }
            return false
        }
    }

    private func deliver(_ event: PostgresNotificationEvent) {
        let continuations = state.withLock { state -> [CheckedContinuation<Wake, Never>] in
            switch event {
            case .reconnected:
                return Self.wakeAll(&state, .notified)
            case .notification(let channel, let payload):
                var woken: [CheckedContinuation<Wake, Never>] = []
                for (id, waiter) in state.waiters where waiter.channel == channel && (waiter.payload == nil || waiter.payload == payload) {
                    if let continuation = Self.fire(&state, id, .notified) { woken.append(continuation) }
                }
                return woken
            }
        }
        for continuation in continuations { continuation.resume(returning: .notified) }
    }

    /// The stream ended (pool shut down): the next subscription starts a new listener.
    private func listenerEnded() {
        let continuations = state.withLock { state -> [CheckedContinuation<Wake, Never>] in
            if case .running = state.phase { state.phase = .idle }
            return Self.wakeAll(&state, .notified)
        }
        for continuation in continuations { continuation.resume(returning: .notified) }
    }

    private static func wakeAll(_ state: inout State, _ wake: Wake) -> [CheckedContinuation<Wake, Never>] {
        var woken: [CheckedContinuation<Wake, Never>] = []
        for id in Array(state.waiters.keys) {
            if let continuation = fire(&state, id, wake) { woken.append(continuation) }
        }
        return woken
    }

    /// Hands the wake-up to a parked waiter (returned, to resume outside the lock) or leaves it pending.
    private static func fire(_ state: inout State, _ id: UInt64, _ wake: Wake) -> CheckedContinuation<Wake, Never>? {
        guard var waiter = state.waiters[id] else { return nil }
        defer { state.waiters[id] = waiter }
        if let continuation = waiter.continuation {
            waiter.continuation = nil
            return continuation
        }
        if waiter.pending != .stopped { waiter.pending = wake }
        return nil
    }

    // MARK: Waiting

    fileprivate func park(_ id: UInt64) async -> Wake {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                let immediate = state.withLock { state -> Wake? in
                    guard var waiter = state.waiters[id] else { return .stopped }
                    if waiter.cancelled { return .timedOut }
                    if let pending = waiter.pending {
                        if pending != .stopped { waiter.pending = nil }
                        state.waiters[id] = waiter
                        return pending
                    }
                    waiter.continuation = continuation
                    state.waiters[id] = waiter
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Wake, Never>? in
                guard var waiter = state.waiters[id] else { return nil }
                waiter.cancelled = true
                let continuation = waiter.continuation
                waiter.continuation = nil
                state.waiters[id] = waiter
                return continuation
            }
            continuation?.resume(returning: .timedOut)
        }
    }

    /// Clears a waiter's cancellation so the subscription can wait again.
    fileprivate func rearm(_ id: UInt64) {
        state.withLock { state in state.waiters[id]?.cancelled = false }
    }

    fileprivate func shutDown(_ id: UInt64) {
        let continuation = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            guard var waiter = state.waiters[id] else { return nil }
            waiter.pending = .stopped
            let continuation = waiter.continuation
            waiter.continuation = nil
            state.waiters[id] = waiter
            return continuation
        }
        continuation?.resume(returning: .stopped)
    }

    fileprivate func remove(_ id: UInt64) {
        let continuation = state.withLock { $0.waiters.removeValue(forKey: id)?.continuation }
        continuation?.resume(returning: .stopped)
    }

    /// One registered interest; removed from the feed when released.
    final class Subscription: Sendable {
        private let feed: ChangeFeed
        private let id: UInt64

        fileprivate init(feed: ChangeFeed, id: UInt64) {
            self.feed = feed
            self.id = id
        }

        deinit { feed.remove(id) }

        /// Waits for a matching notification (or one that arrived since the last wait), the
        /// timeout, or shutdown, whichever comes first.
        func wait(timeout: Duration) async -> Wake {
            let feed = self.feed
            let id = self.id
            return await withGracefulShutdownHandler {
                await withTaskGroup(of: Wake.self) { group in
                    group.addTask { await feed.park(id) }
                    group.addTask {
                        do {
                            try await Task.sleep(for: timeout)
                        } catch {
                            return .stopped  // cancelled: the other child already answered or the request ended
                        }
                        return .timedOut
                    }
                    let first = await group.next() ?? .timedOut
                    group.cancelAll()
                    await group.waitForAll()
                    feed.rearm(id)
                    return first
                }
            } onGracefulShutdown: {
                feed.shutDown(id)
            }
        }
    }
}

/// The route table's channel.
enum RouteTableFeed {
    static let channel = "cflike_routes"
}

/// Stops the change feed on graceful shutdown, so nothing waits on it past the server.
struct ChangeFeedService: Service {
    let feed: ChangeFeed

    func run() async throws {
        try? await gracefulShutdown()
        feed.stop()
    }
}
