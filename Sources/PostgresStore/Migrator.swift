import Logging

/// Applies `Migration`s forward-only, recording them in `schema_migrations`.
public struct Migrator: Sendable {
    private let migrations: [Migration]
    private let logger: Logger

    /// An arbitrary fixed key, so every process of this platform contends for the same advisory lock.
    static let advisoryLockKey: Int64 = 0x6366_6C69_6B65_4D47

    /// Creates a migrator; the list is validated when `migrate` runs.
    public init(migrations: [Migration], logger: Logger) {
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies pending migrations, each in its own transaction, under a session-level advisory lock
    /// so concurrent starters are safe. Throws `.usage` for unordered versions or a database newer
    /// than this binary. Returns the versions applied now (empty when up to date).
    @discardableResult
    public func migrate(_ pool: PostgresPool) async throws -> [Int] {
        for (previous, next) in zip(migrations, migrations.dropFirst()) where next.version <= previous.version {
            throw PostgresError(kind: .usage, message: "migration versions must be strictly increasing (\(previous.version) then \(next.version))")
        }
        return try await pool.withConnection { [migrations, logger] connection in
            try connection.query("SELECT pg_advisory_lock($1)", [Self.advisoryLockKey])
            defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [Self.advisoryLockKey]) }

            try connection.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version int PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let applied = Set(try connection.query("SELECT version FROM schema_migrations").map { try $0.decode("version", as: Int.self) })
            let known = Set(migrations.map(\.version))
            if let unknown = applied.subtracting(known).max() {
                throw PostgresError(
                    kind: .usage,
                    message: "the database has schema version \(unknown), which this binary does not know; refusing to run against a newer schema"
                )
            }

            var appliedNow: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                try connection.query("BEGIN")
                do {
                    try connection.execute(migration.sql)
                    try connection.query(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
                        [migration.version, migration.name]
                    )
                    try connection.query("COMMIT")
                } catch {
                    if !connection.isBroken { _ = try? connection.query("ROLLBACK") }
                    logger.debug("migration failed", metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)"])
                    throw error
                }
                logger.info("applied migration", metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)"])
                appliedNow.append(migration.version)
            }
            return appliedNow
        }
    }
}
