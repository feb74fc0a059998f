import Foundation
import Logging
import PostgresStore
import Testing
import TestSupport

/// Every test that talks to PostgreSQL lives in a suite nested here, so they run one at a time
/// and never exhaust the server's connection slots or skew the timing assertions.
@Suite(.serialized) enum PostgresIntegration {}

let testLogger: Logger = {
    var logger = Logger(label: "PostgresStoreTests")
    logger.logLevel = .info
    return logger
}()

/// A thrown value tests use to trigger rollbacks.
struct ExpectedFailure: Error {}

/// Creates a scratch database and a pool on it, runs `body`, then tears both down even if it throws.
func withScratchPool<T>(
    poolSize: Int = 4, _ body: (ScratchDatabase, PostgresPool) async throws -> T
) async throws -> T {
    let database = try await ScratchDatabase.create(logger: testLogger)
    let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: database.conninfo, poolSize: poolSize), logger: testLogger)
    do {
        let value = try await body(database, pool)
        await pool.shutdown()
        await database.drop()
        return value
    } catch {
        await pool.shutdown()
        await database.drop()
        throw error
    }
}

/// Terminates every backend of `database` except the caller's, waiting until they are gone.
@discardableResult
func terminateBackends(of database: ScratchDatabase) async throws -> Int {
    let killer = PostgresPool(configuration: PostgresConfiguration(conninfo: database.conninfo, poolSize: 1), logger: testLogger)
    let result: PostgresResult
    do {
        // The timeout makes pg_terminate_backend wait until each backend has really exited.
        result = try await killer.query("""
            SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS killed
            FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            """)
    } catch {
        await killer.shutdown()
        throw error
    }
    await killer.shutdown()
    return try result[0].decode("killed", as: Int.self)
}

/// Shuts `pool` down if `body` has not finished in time, which ends LISTEN streams so a lost
/// notification fails the test instead of hanging it.
func withWatchdog<T>(_ pool: PostgresPool, seconds: Int = 15, _ body: () async throws -> T) async throws -> T {
    let watchdog = Task {
        try await Task.sleep(for: .seconds(seconds))
        await pool.shutdown()
    }
    defer { watchdog.cancel() }
    return try await body()
}
