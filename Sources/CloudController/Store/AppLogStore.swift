import Foundation
import PlatformModels
import PostgresStore

/// App log lines in PostgreSQL: the newest `keep` per app, kept across restarts and redeploys.
enum AppLogStore {
    /// Longest message kept (bytes of UTF-8); longer ones are cut at a character boundary.
    static let maxMessageBytes = UntrustedText.Field.logMessage.maxBytes

    /// Makes a message storable and safe to show, whoever wrote it (agents, stagers, the
    /// controller itself): one line, no control characters or escape sequences (NUL, which
    /// PostgreSQL text cannot hold, included), at most `maxMessageBytes`.
    static func storable(_ message: String) -> String {
        UntrustedText.clean(message, as: .logMessage)
    }

    /// Appends `lines` (lines of unknown apps are dropped), trims each app to its newest
    /// `keep` and wakes the app's followers. Returns the apps that got lines.
    @discardableResult
    static func append(_ conn: PostgresConnection, _ lines: [LogLine], keep: Int) throws -> [String] {
        guard !lines.isEmpty else { return [] }
        let inserted = try conn.query(
            """
            INSERT INTO app_log_lines(app_guid, timestamp, source_type, source_instance, message_type, message)
            SELECT u.app, u.ts, u.source_type, u.source_instance, u.message_type, u.message
            FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
              WITH ORDINALITY AS u(app, ts, source_type, source_instance, message_type, message, ord)
            JOIN apps a ON a.guid = u.app
            ORDER BY u.ord
            RETURNING app_guid
            """,
            [lines.map { $0.appGUID.lowercased() }, lines.map(\.timestamp), lines.map(\.sourceType), lines.map(\.sourceInstance),
             lines.map(\.messageType.rawValue), lines.map { storable($0.message) }])
        let apps = Array(Set(try inserted.map { try $0.decode("app_guid", as: String.self) })).sorted()
        guard !apps.isEmpty else { return [] }
        try conn.query(
            """
            DELETE FROM app_log_lines l USING (
              SELECT g.app, (SELECT id FROM app_log_lines WHERE app_guid = g.app ORDER BY id DESC OFFSET $2 LIMIT 1) AS cutoff
              FROM unnest($1::uuid[]) AS g(app)) c
            WHERE l.app_guid = c.app AND l.id <= c.cutoff
            """, [apps, keep])
        try conn.query("SELECT pg_notify($1, a) FROM unnest($2::text[]) AS a", [AgentProtocol.logsChannel, apps])
        return apps
    }

    /// One stored line and its cursor.
    struct Stored: Sendable {
        var id: Int64
        var line: LogLine
    }

    static let columns = "id, app_guid, timestamp, source_type, source_instance, message_type, message"

    static func decode(_ row: PostgresRow) throws -> Stored {
        Stored(id: try row.decode("id"), line: LogLine(
            appGUID: try row.decode("app_guid"), timestamp: try row.decode("timestamp"),
            sourceType: try row.decode("source_type"), sourceInstance: try row.decode("source_instance"),
            messageType: LogLine.Stream(rawValue: try row.decode("message_type")) ?? .out, message: try row.decode("message")))
    }

    /// The oldest `limit` lines after `cursor`, oldest first.
    static func after(_ conn: PostgresConnection, app: String, cursor: Int64, limit: Int) throws -> [Stored] {
        try conn.query("SELECT \(columns) FROM app_log_lines WHERE app_guid = $1 AND id > $2 ORDER BY id LIMIT $3",
                       [app, cursor, limit]).map(decode)
    }

    /// The newest `limit` lines, oldest first.
    static func newest(_ conn: PostgresConnection, app: String, limit: Int) throws -> [Stored] {
        try conn.query("SELECT * FROM (SELECT \(columns) FROM app_log_lines WHERE app_guid = $1 ORDER BY id DESC LIMIT $2) t ORDER BY id",
                       [app, limit]).map(decode)
    }

    /// The cursor of the app's newest line (0 when it has none).
    static func end(_ conn: PostgresConnection, app: String) throws -> Int64 {
        try conn.query("SELECT coalesce(max(id), 0) AS id FROM app_log_lines WHERE app_guid = $1", [app]).first?.decode("id") ?? 0
    }
}
