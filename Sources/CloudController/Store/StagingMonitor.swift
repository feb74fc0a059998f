import Foundation
import Logging
import PostgresStore
import ServiceLifecycle

/// Fails builds nobody will finish, every interval:
///
/// - builds claimed by a stager silent for `lostAfterSeconds` (a stager parked in a long-poll
///   counts as heard from until its poll's end);
/// - builds claimed longer ago than their staging timeout plus a grace period (the stager
///   enforces the timeout itself; this catches one that hangs);
/// - queued builds no live stager can take (none polled for their stack within
///   `lostAfterSeconds`), once they have waited that long, so a push without a stager fails
///   instead of hanging;
/// - queued builds still unclaimed after their staging timeout (stagers too busy).
///
/// Each failure gets CF's `StagingError` / `StagingTimeExpired` and a `STG` line in the app's
/// log. Several controllers may run this at once: every update re-checks `state = 'STAGING'`.
struct StagingMonitor: Service {
    let db: Database
    let interval: Duration
    let lostAfterSeconds: Int
    let keepLogLines: Int
    let logger: Logger

    static let timeoutGraceSeconds = 60

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return  // cancelled: shutting down
                }
                do {
                    let failed = try await Self.sweep(db, lostAfterSeconds: lostAfterSeconds, keepLogLines: keepLogLines)
                    if !failed.isEmpty { logger.warning("builds failed by the staging monitor", metadata: ["build.guids": .string(failed.joined(separator: ","))]) }
                } catch {
                    logger.warning("staging sweep skipped", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Fails what the rules above catch; returns the guids of the builds failed.
    static func sweep(_ db: Database, lostAfterSeconds: Int, timeoutGraceSeconds: Int = timeoutGraceSeconds,
                      keepLogLines: Int) async throws -> [String] {
        try await db.write { conn in
            // A live stager: heard from within lostAfterSeconds, or parked in a poll that has not ended.
            let live = """
                greatest(s.last_seen_at, coalesce(s.poll_deadline, s.last_seen_at)) >= now() - make_interval(secs => $1::integer)
                """
            let failed = try conn.query(
                """
                WITH doomed AS (
                  SELECT b.guid, b.app_guid, CASE
                    WHEN b.claimed_by IS NOT NULL
                         AND NOT EXISTS (SELECT 1 FROM stagers s WHERE s.id = b.claimed_by AND \(live))
                      THEN format('StagingError - the stager %s stopped polling for more than %s seconds and was lost',
                                  b.claimed_by, $1::integer)
                    WHEN b.claimed_by IS NOT NULL AND b.claimed_at < now() - make_interval(secs => b.timeout_seconds + $2::integer)
                      THEN format('StagingTimeExpired - staging did not finish within %s seconds', b.timeout_seconds)
                    WHEN b.claimed_by IS NULL AND b.created_at < now() - make_interval(secs => $1::integer)
                         AND NOT EXISTS (SELECT 1 FROM stagers s WHERE b.stack = ANY(s.stacks) AND \(live))
                      THEN format('StagingError - no stager for stack %s is running', b.stack)
                    WHEN b.claimed_by IS NULL AND b.created_at < now() - make_interval(secs => b.timeout_seconds)
                      THEN format('StagingError - no stager took the build within %s seconds', b.timeout_seconds)
                    END AS error
                  FROM builds b WHERE b.state = 'STAGING'
                )
                UPDATE builds b SET state = 'FAILED', error = d.error, updated_at = now()
                FROM doomed d WHERE b.guid = d.guid AND d.error IS NOT NULL AND b.state = 'STAGING'
                RETURNING b.guid, b.app_guid, b.error
                """, [lostAfterSeconds, timeoutGraceSeconds])
            let lines = try failed.map {
                StagingController.line(app: try $0.decode("app_guid"), error: true, "Staging failed: \(try $0.decode("error", as: String.self))")
            }
            try AppLogStore.append(conn, lines, keep: keepLogLines)
            return try failed.map { try $0.decode("guid", as: String.self) }
        }
    }
}
