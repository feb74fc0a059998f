import Foundation
import Logging
import Synchronization

/// Keeps a dedicated LISTEN connection on its own thread and feeds an `AsyncStream`.
///
/// A thread of its own rather than a thread-pool task, because it blocks in `poll()` for as long as
/// the stream lives and would otherwise take a pool thread away for good.
final class PostgresListener: Sendable {
    private let channels: [String]
    private let configuration: PostgresConfiguration
    private let logger: Logger
    private let continuation: AsyncStream<PostgresNotificationEvent>.Continuation
    /// Called once, when the first LISTEN succeeds or the listener gives up first.
    private let ready: Mutex<(@Sendable (Result<Void, PostgresError>) -> Void)?>
    private let stopped = Atomic<Bool>(false)

    private static let pollMilliseconds: Int32 = 250
    private static let keepaliveInterval: Duration = .seconds(30)

    init(
        channels: [String], configuration: PostgresConfiguration, logger: Logger,
        continuation: AsyncStream<PostgresNotificationEvent>.Continuation,
        ready: (@Sendable (Result<Void, PostgresError>) -> Void)?
    ) {
        self.channels = channels
        self.configuration = configuration
        self.logger = logger
        self.continuation = continuation
        self.ready = Mutex(ready)
    }

    /// Validates the channels and starts the thread; `onExit` runs on that thread when it ends.
    func start(onExit: @escaping @Sendable () -> Void) {
        guard !channels.isEmpty, channels.allSatisfy(Self.isValidChannel) else {
            fail(PostgresError(kind: .usage, message: "channel names must match [a-z_][a-z0-9_]* (at most 63 characters)"))
            onExit()
            return
        }
        continuation.onTermination = { [weak self] _ in self?.stopped.store(true, ordering: .relaxed) }
        Thread.detachNewThread { [self] in
            run()
            onExit()
        }
    }

    /// Ends the stream now; the thread notices within one poll interval and closes its connection.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        continuation.finish()
    }

    func fail(_ error: PostgresError) {
        reportReady(.failure(error))
        continuation.finish()
    }

    private var isStopped: Bool { stopped.load(ordering: .relaxed) }

    static func isValidChannel(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 63 else { return false }
        func isLetter(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || byte == UInt8(ascii: "_") }
        return isLetter(first) && bytes.dropFirst().allSatisfy { isLetter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    // MARK: The thread

    private func run() {
        var backoff = 0.1
        var nextConnectIsReconnect = false
        while !isStopped {
            let connection: PostgresConnection
            do {
                connection = try PostgresConnection.connect(configuration: configuration, logger: logger)
                // Names are validated, so quoting them as identifiers is safe.
                for channel in channels { try connection.query("LISTEN \"\(channel)\"") }
            } catch {
                let error = error as? PostgresError ?? PostgresError(kind: .connection, message: "\(error)")
                if reportReady(.failure(error)) {
                    continuation.finish()
                    return
                }
                logger.debug("postgres listener could not connect; retrying", metadata: [
                    "postgres.error": "\(error)", "postgres.retry_seconds": "\(backoff)",
                ])
                nextConnectIsReconnect = true
                sleep(seconds: backoff)
                backoff = min(backoff * 2, 2)
                continue
            }
            backoff = 0.1
            logger.debug("postgres listener listening", metadata: ["postgres.channels": "\(channels.joined(separator: ","))"])
            if nextConnectIsReconnect { continuation.yield(.reconnected) }
            reportReady(.success(()))
            nextConnectIsReconnect = true
            pump(connection)
        }
        reportReady(.failure(PostgresError(kind: .poolClosed, message: "the pool was shut down")))
        continuation.finish()
    }

    /// Delivers notifications until the connection breaks or the listener stops.
    private func pump(_ connection: PostgresConnection) {
        let clock = ContinuousClock()
        var lastTraffic = clock.now
        while !isStopped {
            var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
            guard descriptor.fd >= 0 else { return }
            let ready = poll(&descriptor, 1, Self.pollMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            var alive = true
            if ready > 0 {
                alive = connection.consumeInput()
                lastTraffic = clock.now
            } else if clock.now - lastTraffic > Self.keepaliveInterval {
                // A quiet socket cannot tell an idle server from a vanished one; a round trip can.
                alive = (try? connection.query("SELECT 1")) != nil
                lastTraffic = clock.now
            }
            // Deliver what arrived even when the connection then broke: it came before the break.
            for notification in connection.drainNotifications() {
                if case .terminated = continuation.yield(.notification(channel: notification.channel, payload: notification.payload)) {
                    stopped.store(true, ordering: .relaxed)
                }
            }
            guard alive else {
                logger.debug("postgres listener lost its connection")
                return
            }
        }
    }

    @discardableResult
    private func reportReady(_ result: Result<Void, PostgresError>) -> Bool {
        guard let callback = ready.withLock({ callback in defer { callback = nil }; return callback }) else { return false }
        callback(result)
        return true
    }

    /// Sleeps in short steps so a stop is noticed during back-off.
    private func sleep(seconds: Double) {
        var remaining = seconds
        while remaining > 0, !isStopped {
            let step = min(remaining, 0.05)
            Thread.sleep(forTimeInterval: step)
            remaining -= step
        }
    }
}
