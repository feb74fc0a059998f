import Foundation
import PostgresStore
import Synchronization
import Testing

extension PostgresIntegration {
    @Suite struct ErrorsAndTransactions {
        @Test func transactionRollsBackWhenTheBodyThrows() async throws {
            try await withScratchPool(poolSize: 1) { _, pool in
                try await pool.query("CREATE TABLE items (name text)")
                await #expect(throws: ExpectedFailure.self) {
                    try await pool.transaction { connection in
                        try connection.query("INSERT INTO items VALUES ($1)", ["doomed"])
                        throw ExpectedFailure()
                    }
                }
                let count = try await pool.query("SELECT count(*) AS n FROM items")
                #expect(try count[0].decode("n", as: Int.self) == 0)
                // The connection went back to the pool outside any transaction: SAVEPOINT needs one.
                let outside = try await #require(throws: PostgresError.self) { try await pool.query("SAVEPOINT probe") }
                #expect(outside.sqlState == "25P01")
            }
        }

        @Test func transactionCommits() async throws {
            try await withScratchPool { _, pool in
                try await pool.query("CREATE TABLE items (name text)")
                let inserted = try await pool.transaction { connection in
                    try connection.query("INSERT INTO items VALUES ($1), ($2)", ["a", "b"]).affectedRows
                }
                #expect(inserted == 2)
                let names = try await pool.query("SELECT name FROM items ORDER BY name").map { try $0.decode("name", as: String.self) }
                #expect(names == ["a", "b"])
            }
        }

        @Test func leftOpenTransactionIsNotLeakedToTheNextLease() async throws {
            try await withScratchPool(poolSize: 1) { _, pool in
                try await pool.query("CREATE TABLE items (name text)")
                try await pool.withConnection { connection in
                    try connection.query("BEGIN")
                    try connection.query("INSERT INTO items VALUES ('dangling')")
                }
                let count = try await pool.query("SELECT count(*) AS n FROM items")
                #expect(try count[0].decode("n", as: Int.self) == 0)
            }
        }

        @Test func uniqueViolationCarriesSQLStateAndConstraint() async throws {
            try await withScratchPool { _, pool in
                try await pool.query("CREATE TABLE things (name text CONSTRAINT things_name_key UNIQUE)")
                try await pool.query("INSERT INTO things VALUES ($1)", ["x"])
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.query("INSERT INTO things VALUES ($1)", ["x"])
                }
                #expect(error.kind == .server)
                #expect(error.sqlState == "23505")
                #expect(error.isUniqueViolation)
                #expect(!error.isConnectionError)
                #expect(error.constraint == "things_name_key")
                #expect(error.table == "things")
                #expect(error.detail?.contains("already exists") == true)
                #expect(error.description.hasPrefix("server: duplicate key value"))
                #expect(error.description.hasSuffix("(SQLSTATE 23505)"))
            }
        }

        @Test func foreignKeyViolationIsRecognised() async throws {
            try await withScratchPool { _, pool in
                try await pool.execute("""
                    CREATE TABLE parents (id int PRIMARY KEY);
                    CREATE TABLE children (parent int REFERENCES parents(id));
                    """)
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.query("INSERT INTO children VALUES ($1)", [42])
                }
                #expect(error.isForeignKeyViolation)
                #expect(error.constraint == "children_parent_fkey")
            }
        }

        @Test func syntaxErrorCarriesServerMessage() async throws {
            try await withScratchPool { _, pool in
                let error = try await #require(throws: PostgresError.self) { try await pool.query("SELEC 1") }
                #expect(error.sqlState == "42601")
                #expect(error.message.contains("syntax error at or near \"SELEC\""))
                // The connection survives a statement error.
                #expect(try await pool.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
            }
        }

        @Test func notNullViolationNamesTheColumn() async throws {
            try await withScratchPool { _, pool in
                try await pool.query("CREATE TABLE things (name text NOT NULL)")
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.query("INSERT INTO things VALUES ($1)", [String?.none])
                }
                #expect(error.sqlState == "23502")
                #expect(error.column == "name")
            }
        }

        @Test func connectionFailureNeverRevealsThePassword() async throws {
            for conninfo in [
                "postgresql://cflike_test:s3cr%2Ftpw@127.0.0.1:1/postgres",
                "host=127.0.0.1 port=1 user=cflike_test password=s3cr/tpw dbname=postgres",
                "postgresql://cflike_test:s3cr%2Ftpw@127.0.0.1:1/postgres?bogus_option=1",
            ] {
                let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: conninfo, poolSize: 1, connectTimeoutSeconds: 2), logger: testLogger)
                let error = try await #require(throws: PostgresError.self) { try await pool.query("SELECT 1") }
                #expect(error.kind == .connection)
                #expect(error.isConnectionError)
                #expect(!error.message.isEmpty)
                #expect(!error.description.contains("s3cr"))
                await pool.shutdown()
            }
        }

        @Test func closedPoolRefusesWork() async throws {
            try await withScratchPool { _, pool in
                try await pool.query("SELECT 1")
                await pool.shutdown()
                let error = try await #require(throws: PostgresError.self) { try await pool.query("SELECT 1") }
                #expect(error.kind == .poolClosed)
            }
        }
    }
}

extension PostgresPool {
    /// Runs a multi-statement script, for test setup.
    func execute(_ sql: String) async throws {
        try await withConnection { connection in try connection.execute(sql) }
    }
}
