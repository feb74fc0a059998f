import Crypto
import Foundation
import PlatformModels
import PostgresStore

/// Alerts in PostgreSQL: one active row per fingerprint (a hash of the labels, so the same
/// condition raised on every pass stays one alert), resolved rows kept as history.
enum AlertStore {
    static let columns = """
        id, state, labels, annotations, fingerprint, extract(epoch FROM starts_at)::float8 AS starts,
        extract(epoch FROM ends_at)::float8 AS ends
        """

    /// SHA-256 of the labels sorted by name, as hex (first 16 bytes).
    static func fingerprint(_ labels: [String: String]) -> String {
        var text = ""
        for key in labels.keys.sorted() {
            text += key + "\u{0}" + (labels[key] ?? "") + "\u{0}"
        }
        return SHA256.hash(data: Data(text.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    static func record(_ row: PostgresRow) throws -> AlertRecord {
        AlertRecord(
            id: try row.decode("id"), state: try row.decode("state"), labels: try Rows.stringMap(row, "labels"),
            annotations: try Rows.stringMap(row, "annotations"), startsAt: try row.decode("starts"),
            endsAt: try row.decode("ends", as: Double?.self), fingerprint: try row.decode("fingerprint"))
    }

    /// Makes `drafts` (already sanitized) the active set: new fingerprints start, known ones
    /// get the newest annotations, active ones neither in the set nor `keeping` are resolved
    /// (`keeping`: alerts whose update was refused, left as they are). Crash alerts about an
    /// app get its newest log lines as the `last_log_lines` annotation.
    static func replaceActive(_ conn: PostgresConnection, with drafts: [AlertDraft], keeping: Set<String> = [],
                              logLines: Int) throws -> HealthAlertsAnswer {
        var wanted: [String: AlertDraft] = [:]
        for draft in drafts { wanted[fingerprint(draft.labels)] = draft }
        let resolved = try conn.query(
            """
            UPDATE alerts SET state = 'resolved', ends_at = now(), updated_at = now()
            WHERE state = 'active' AND NOT (fingerprint = ANY($1::text[])) RETURNING \(columns)
            """, [Array(keeping.union(wanted.keys))]).map(record)
        for (print, draft) in wanted.sorted(by: { $0.key < $1.key }) {
            var annotations = draft.annotations
            let app = draft.labels["app_guid"].flatMap { UUID(uuidString: $0) != nil ? $0.lowercased() : nil }
            if let app, draft.name.lowercased().contains("crash") {
                let lines = try AppLogStore.newest(conn, app: app, limit: logLines).map { stored in
                    "[\(stored.line.sourceType)/\(stored.line.sourceInstance)] \(stored.line.message)"
                }
                // Lines stored before they were cleaned on ingest may still hold escapes.
                if !lines.isEmpty {
                    annotations["last_log_lines"] = UntrustedText.clean(String(lines.joined(separator: "\n").suffix(8000)), as: .alertAnnotation)
                }
            }
            try conn.query(
                """
                INSERT INTO alerts(fingerprint, name, state, labels, annotations, app_guid)
                VALUES ($1, $2, 'active', $3::jsonb, $4::jsonb, $5::uuid)
                ON CONFLICT (fingerprint) WHERE state = 'active'
                DO UPDATE SET annotations = EXCLUDED.annotations, updated_at = now()
                """, [print, draft.name, Rows.json(draft.labels), Rows.json(annotations), app])
        }
        let active = try conn.query("SELECT \(columns) FROM alerts WHERE state = 'active' ORDER BY id").map(record)
        return HealthAlertsAnswer(active: active, resolved: resolved)
    }
}
