import Foundation
import Logging
import PostgresStore
import ServiceLifecycle

/// Marks agents that stopped heartbeating as lost, every heartbeat interval: their instances
/// leave the route table and the health manager is woken to place them on other agents (under
/// new guids). A lost agent that comes back gets 404 on its next heartbeat and registers again.
///
/// Several controllers may run this at once: the update is idempotent.
struct AgentMonitor: Service {
    let db: Database
    let interval: Duration
    let lostAfterSeconds: Int
    let cfAPI: String
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return  // cancelled: shutting down
                }
                do {
                    let lost = try await Self.sweep(db, lostAfterSeconds: lostAfterSeconds, cfAPI: cfAPI)
                    if !lost.isEmpty { logger.warning("agents lost", metadata: ["agent.ids": .string(lost.joined(separator: ","))]) }
                } catch {
                    logger.warning("agent sweep skipped", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Marks every active agent silent for `lostAfterSeconds` lost; returns their ids.
    static func sweep(_ db: Database, lostAfterSeconds: Int, cfAPI: String) async throws -> [String] {
        try await db.write { conn in
            try Placement.lock(conn)
            let lost = try conn.query(
                """
                UPDATE agents SET state = 'lost'
                WHERE state = 'active' AND last_heartbeat_at < now() - make_interval(secs => $1) RETURNING id
                """, [lostAfterSeconds]).map { try $0.decode("id", as: String.self) }
            guard !lost.isEmpty else { return [] }
            try InstanceReports.bumpRoutes(conn)
            try HealthController.bump(conn)
            return lost
        }
    }
}
