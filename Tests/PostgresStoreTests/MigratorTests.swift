import Foundation
import PostgresStore
import Testing

extension PostgresIntegration {
    @Suite struct Migrations {
        static let base = [
            Migration(version: 1, name: "create widgets", sql: "CREATE TABLE widgets (id int PRIMARY KEY)"),
            Migration(version: 2, name: "add name", sql: "ALTER TABLE widgets ADD COLUMN name text; CREATE INDEX widgets_name ON widgets (name)"),
        ]

        @Test func appliesOnceThenIsANoOp() async throws {
            try await withScratchPool { _, pool in
                let migrator = Migrator(migrations: Self.base, logger: testLogger)
                #expect(try await migrator.migrate(pool) == [1, 2])
                #expect(try await migrator.migrate(pool) == [])
                let rows = try await pool.query("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
                #expect(try rows.map { try $0.decode("version", as: Int.self) } == [1, 2])
                #expect(try rows[1].decode("name", as: String.self) == "add name")
                _ = try rows[0].decode("applied_at", as: Date.self)
                try await pool.query("INSERT INTO widgets (id, name) VALUES ($1, $2)", [1, "w"])

                let extended = Self.base + [Migration(version: 5, name: "more", sql: "ALTER TABLE widgets ADD COLUMN size int")]
                #expect(try await Migrator(migrations: extended, logger: testLogger).migrate(pool) == [5])
            }
        }

        @Test func racingMigratorsApplyEachVersionOnce() async throws {
            try await withScratchPool { database, pool in
                let migrations = Self.base + [
                    Migration(version: 3, name: "slow", sql: "SELECT pg_sleep(0.3); CREATE TABLE gadgets (id int)"),
                ]
                // A second pool stands in for a second process.
                let otherPool = PostgresPool(configuration: PostgresConfiguration(conninfo: database.conninfo, poolSize: 2), logger: testLogger)
                async let first = Migrator(migrations: migrations, logger: testLogger).migrate(pool)
                async let second = Migrator(migrations: migrations, logger: testLogger).migrate(otherPool)
                let results = try await [first, second]
                await otherPool.shutdown()
                #expect((results[0] + results[1]).sorted() == [1, 2, 3])
                #expect(results.contains([]))
                let count = try await pool.query("SELECT count(*) AS n FROM schema_migrations")
                #expect(try count[0].decode("n", as: Int.self) == 3)
            }
        }

        @Test func failingMigrationRollsBackAndIsNotRecorded() async throws {
            try await withScratchPool { _, pool in
                let broken = Self.base + [
                    Migration(version: 3, name: "broken", sql: "CREATE TABLE half_done (id int); SELECT 1/0"),
                ]
                let error = try await #require(throws: PostgresError.self) {
                    try await Migrator(migrations: broken, logger: testLogger).migrate(pool)
                }
                #expect(error.sqlState == "22012")
                let versions = try await pool.query("SELECT version FROM schema_migrations ORDER BY version").map { try $0.decode("version", as: Int.self) }
                #expect(versions == [1, 2])
                let table = try await pool.query("SELECT to_regclass('half_done') IS NULL AS missing")
                #expect(try table[0].decode("missing", as: Bool.self))

                let fixed = Self.base + [Migration(version: 3, name: "fixed", sql: "CREATE TABLE half_done (id int)")]
                #expect(try await Migrator(migrations: fixed, logger: testLogger).migrate(pool) == [3])
            }
        }

        @Test func refusesADatabaseNewerThanTheBinary() async throws {
            try await withScratchPool { _, pool in
                try await Migrator(migrations: Self.base, logger: testLogger).migrate(pool)
                let older = Migrator(migrations: [Self.base[0]], logger: testLogger)
                let error = try await #require(throws: PostgresError.self) { try await older.migrate(pool) }
                #expect(error.kind == .usage)
                #expect(error.message.contains("2"))
            }
        }

        @Test func refusesVersionsThatDoNotIncrease() async throws {
            try await withScratchPool { _, pool in
                for versions in [[2, 1], [1, 1]] {
                    let migrations = versions.map { Migration(version: $0, name: "m\($0)", sql: "SELECT 1") }
                    let error = try await #require(throws: PostgresError.self) {
                        try await Migrator(migrations: migrations, logger: testLogger).migrate(pool)
                    }
                    #expect(error.kind == .usage)
                }
                let table = try await pool.query("SELECT to_regclass('schema_migrations') IS NULL AS missing")
                #expect(try table[0].decode("missing", as: Bool.self))
            }
        }
    }
}
