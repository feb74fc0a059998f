import Logging
import NIOCore
import PlatformClient
import PlatformModels
import Synchronization

/// Where route tables come from: the CC's versioned long-poll (`ComponentClient`), or a stub.
public protocol RouteTableSource: Sendable {
    /// Answers at once when the table's version differs from `version`, otherwise waits up
    /// to `waitSeconds` for a change and answers with the current table either way.
    func routeTable(after version: Int?, waitSeconds: Int) async throws -> RouteTable
    /// The same, telling the source which router asks and how fresh its table is.
    func routeTable(after version: Int?, waitSeconds: Int, reporting report: RouterPollReport?) async throws -> RouteTable
}

extension RouteTableSource {
    /// Sources that do not track routers ignore the report.
    public func routeTable(after version: Int?, waitSeconds: Int, reporting report: RouterPollReport?) async throws -> RouteTable {
        try await routeTable(after: version, waitSeconds: waitSeconds)
    }
}

extension ComponentClient: RouteTableSource {}

/// How fresh the router's table is, for `/metrics`, `/health` and logs.
struct RouteTableStatus: Sendable {
    var version = -1
    var routes = 0
    var backends = 0
    /// Uptime (ns) of the last answer from the CC; 0 before the first.
    var lastContact: Int64 = 0
    /// The CC did not answer the last poll: routing continues with the last table.
    var stale = false
    var lastError: String?
    var updates = 0
    var failures = 0
}

/// The shared, locked `RouteTableStatus` (read by scrapes and health checks, never by requests).
final class RouteTableStatusBox: Sendable {
    private let state = Mutex(RouteTableStatus())

    func withLockedValue<T>(_ body: (inout RouteTableStatus) -> T) -> T {
        state.withLock { body(&$0) }
    }

    var value: RouteTableStatus { state.withLock { $0 } }
}

/// Keeps the route table fresh: long-polls the CC with the version it has (the CC answers as
/// soon as a change commits), builds an immutable snapshot per new version and hands it to
/// every event loop. When the CC is unreachable it keeps the last table, says so once in the
/// log and in the metrics, and retries with a short back-off. Every poll names the router
/// (``RouterPollReport``): its id, listen address, the version it serves and the seconds since
/// its table last matched the CC's (~0 after a successful poll, the outage's length after one).
struct RouteTableService: Sendable {
    let source: any RouteTableSource
    let pollSeconds: Int
    /// `router.router_id` and the public listen address (`host:port`), sent on every poll.
    let routerID: String
    let listen: String
    let useHostAddress: Bool
    let status: RouteTableStatusBox
    let logger: Logger
    /// Hands a new snapshot to the event loops.
    let publish: @Sendable (RouteSnapshot) -> Void

    func run() async {
        var current: RouteSnapshot?
        var failures = 0
        // Uptime (ns) of the last answer: the table matched the CC's then.
        var lastSync: Int64?
        while !Task.isCancelled {
            do {
                let report = Self.report(routerID: routerID, listen: listen, tableVersion: current?.version, lastSync: lastSync,
                                         now: Int64(NIODeadline.now().uptimeNanoseconds))
                let table = try await source.routeTable(after: current?.version, waitSeconds: pollSeconds, reporting: report)
                let now = Int64(NIODeadline.now().uptimeNanoseconds)
                lastSync = now
                if failures > 0 {
                    logger.notice("cloud controller reachable again", metadata: ["failed_polls": .stringConvertible(failures)])
                }
                failures = 0
                var changed = false
                if table.version != current?.version {
                    let snapshot = RouteSnapshot.build(table, useHostAddress: useHostAddress, previous: current,
                                                       receivedAt: now, logger: logger)
                    publish(snapshot)
                    current = snapshot
                    changed = true
                    logger.info("route table updated", metadata: [
                        "route_table.version": .stringConvertible(snapshot.version),
                        "route_table.routes": .stringConvertible(snapshot.routeCount),
                        "route_table.backends": .stringConvertible(snapshot.backendCount),
                    ])
                }
                let snapshot = current
                status.withLockedValue {
                    $0.lastContact = now
                    $0.stale = false
                    $0.lastError = nil
                    if changed, let snapshot {
                        $0.version = snapshot.version
                        $0.routes = snapshot.routeCount
                        $0.backends = snapshot.backendCount
                        $0.updates += 1
                    }
                }
            } catch {
                if Task.isCancelled || error is CancellationError { return }
                failures += 1
                let description = String(describing: error)
                status.withLockedValue {
                    $0.stale = true
                    $0.lastError = description
                    $0.failures += 1
                }
                if failures == 1 || failures % 60 == 0 {
                    logger.error("cloud controller unreachable; routing continues with the last route table", metadata: [
                        "route_table.version": .stringConvertible(current?.version ?? -1),
                        "failed_polls": .stringConvertible(failures), "error": .string(description),
                    ])
                }
                let backoff = min(5_000, 250 << min(failures - 1, 5))
                do {
                    try await Task.sleep(for: .milliseconds(backoff))
                } catch {
                    return
                }
            }
        }
    }

    /// What a poll says about the router: no table version or age before its first table.
    static func report(routerID: String, listen: String, tableVersion: Int?, lastSync: Int64?, now: Int64) -> RouterPollReport {
        let age = tableVersion == nil ? nil : lastSync.map { Int(max(0, now - $0) / 1_000_000_000) }
        return RouterPollReport(routerID: routerID, tableVersion: tableVersion, tableAgeSeconds: age,
                                version: PlatformVersion.current, listen: listen)
    }
}
