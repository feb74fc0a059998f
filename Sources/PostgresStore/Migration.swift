/// One forward-only schema change.
public struct Migration: Sendable {
    /// Position in the schema history; versions must be strictly increasing.
    public var version: Int
    /// A short human name, recorded alongside the version.
    public var name: String
    /// One or more SQL statements, run in one transaction.
    public var sql: String

    /// Creates a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}
