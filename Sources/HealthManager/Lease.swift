import Foundation
import PostgresStore

/// A named lease in PostgreSQL that one holder at a time owns until it expires, so only one
/// health manager acts while others stand by and take over when it lapses.
///
/// Each operation is one statement, so two contenders never both win: PostgreSQL serialises
/// them on the row. Expiry is judged by the database's clock, never the holders'.
///
/// The table is created by ``prepare(_:)`` rather than by the Cloud Controller's migrations: a
/// standby health manager must be able to contend without depending on the controller's schema
/// or start order, and the health manager module does not know the controller's migrations.
public struct Lease: Sendable {
    /// What the lease protects (`health-manager`).
    public let name: String
    /// Who asks (unique per process, e.g. host and pid).
    public let holder: String
    /// How long an acquisition or renewal lasts.
    public let duration: Duration
    private let pool: PostgresPool

    public init(name: String, holder: String, duration: Duration, pool: PostgresPool) {
        self.name = name
        self.holder = holder
        self.duration = duration
        self.pool = pool
    }

    /// An arbitrary fixed key, so concurrent `prepare` calls do not race on the catalog.
    static let prepareLockKey: Int64 = 0x6366_6C6B_6C65_6173  // "cflkleas"

    /// Creates `component_leases` if it does not exist yet; safe to call from every process.
    public static func prepare(_ pool: PostgresPool) async throws {
        try await pool.transaction { connection in
            try connection.query("SELECT pg_advisory_xact_lock($1)", [prepareLockKey])
            try connection.query(
                """
                CREATE TABLE IF NOT EXISTS component_leases (
                    name text PRIMARY KEY,
                    holder text NOT NULL,
                    expires_at timestamptz NOT NULL
                )
                """)
        }
    }

    private var seconds: Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// Takes the lease if it is free, expired or already ours; returns when it now expires, or
    /// nil when someone else holds it.
    public func acquire() async throws -> Date? {
        try await pool.query(
            """
            INSERT INTO component_leases AS l (name, holder, expires_at)
            VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
            ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE l.expires_at < clock_timestamp() OR l.holder = EXCLUDED.holder
            RETURNING l.expires_at
            """, [name, holder, seconds]).rows.first.map { try $0.decode("expires_at", as: Date.self) }
    }

    /// Extends the lease if we still hold it; nil when it lapsed or someone else holds it
    /// (stop acting, then `acquire` again).
    public func renew() async throws -> Date? {
        try await pool.query(
            """
            UPDATE component_leases SET expires_at = clock_timestamp() + make_interval(secs => $3)
            WHERE name = $1 AND holder = $2 AND expires_at >= clock_timestamp()
            RETURNING expires_at
            """, [name, holder, seconds]).rows.first.map { try $0.decode("expires_at", as: Date.self) }
    }

    /// Gives the lease up so another holder can take it at once; false when it was not ours.
    @discardableResult
    public func release() async throws -> Bool {
        try await pool.query("DELETE FROM component_leases WHERE name = $1 AND holder = $2", [name, holder]).affectedRows == 1
    }
}
