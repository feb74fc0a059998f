import Foundation
import Logging
import PostgresStore

/// Where integration tests find PostgreSQL.
public enum TestEnvironment {
    /// The admin URL from `CFLIKE_TEST_DATABASE_URL`; throws (never skips) when it is missing.
    public static var adminURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["CFLIKE_TEST_DATABASE_URL"], !url.isEmpty else {
                throw TestEnvironmentError(
                    message: "CFLIKE_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL; run ops/test"
                )
            }
            return url
        }
    }
}

/// Why a test could not reach its environment.
public struct TestEnvironmentError: Error, CustomStringConvertible, Sendable {
    /// What is missing and how to provide it.
    public var message: String
    public var description: String { message }
}

/// A fresh, empty database for one test, dropped with `drop()`.
public struct ScratchDatabase: Sendable {
    /// Connection URL of the new database.
    public let conninfo: String
    /// The database's name (`cflike_test_<random>`).
    public let name: String
    private let adminURL: String
    private let logger: Logger

    /// Creates a database with a random name using the admin URL from `CFLIKE_TEST_DATABASE_URL`.
    public static func create(logger: Logger = Logger(label: "test")) async throws -> ScratchDatabase {
        let adminURL = try TestEnvironment.adminURL
        let suffix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let name = "cflike_test_\(suffix)"
        let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: adminURL, poolSize: 1), logger: logger)
        do {
            // The name is generated from hex digits only, so it is safe to place in the statement.
            try await pool.query("CREATE DATABASE \"\(name)\"")
        } catch {
            await pool.shutdown()
            throw error
        }
        await pool.shutdown()
        return ScratchDatabase(conninfo: replacingDatabase(in: adminURL, with: name), name: name, adminURL: adminURL, logger: logger)
    }

    /// Drops the database, disconnecting anyone still using it; errors are ignored.
    public func drop() async {
        let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: adminURL, poolSize: 1), logger: logger)
        _ = try? await pool.query("DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)")
        await pool.shutdown()
    }

    /// Swaps the database in a `postgresql://` URL (keeping any `?host=...` query) or a key=value conninfo.
    static func replacingDatabase(in conninfo: String, with database: String) -> String {
        guard let schemeEnd = conninfo.range(of: "://") else {
            // In key=value form a later keyword overrides an earlier one.
            return conninfo + " dbname=\(database)"
        }
        let afterScheme = conninfo[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let rest = conninfo[authorityEnd...]
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        return String(conninfo[..<authorityEnd]) + "/" + database + query
    }
}
