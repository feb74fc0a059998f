import Foundation
import Logging
import NIOPosix
import PlatformModels
import PostgresStore

/// The controller's handle on PostgreSQL: reads and transactions with the database's
/// availability errors turned into 503, so a database outage never surfaces as a 500.
struct Database: Sendable {
    let pool: PostgresPool

    /// Runs `body` in a transaction (rolled back when it throws).
    func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        do {
            return try await pool.transaction(body)
        } catch let error as PostgresError {
            throw Self.map(error)
        }
    }

    /// Runs `body` on a pooled connection in a read-only snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await write(body)
    }

    static func map(_ error: PostgresError) -> any Error {
        switch error.kind {
        case .connection, .poolClosed, .timeout:
            return APIError.serviceUnavailable
        default:
            return error
        }
    }
}

/// Visibility by membership, as SQL over the roles table. What a user may not see is 404 and
/// never appears in lists; these fragments are the one definition of "may see".
enum Visibility {
    /// Spaces the user ($param) may see: any space role, or manager/auditor of the space's org.
    static func spaces(_ user: String) -> String {
        """
        SELECT r.space_guid FROM roles r WHERE r.user_guid = \(user) AND r.space_guid IS NOT NULL
        UNION SELECT s.guid FROM spaces s JOIN roles r ON r.organization_guid = s.organization_guid
          WHERE r.user_guid = \(user) AND r.type IN ('organization_manager', 'organization_auditor')
        """
    }

    /// Organizations the user may see: any org role or any space role inside it.
    static func organizations(_ user: String) -> String {
        """
        SELECT r.organization_guid FROM roles r WHERE r.user_guid = \(user) AND r.organization_guid IS NOT NULL
        UNION SELECT s.organization_guid FROM roles r JOIN spaces s ON s.guid = r.space_guid WHERE r.user_guid = \(user)
        """
    }
}

/// The roles an actor holds around one space or organization.
struct RoleSet: Sendable {
    var isAdmin: Bool
    var organization: Set<String> = []
    var space: Set<String> = []

    /// Roles for a space: the space's own and those of its organization.
    static func forSpace(_ conn: PostgresConnection, actor: Actor, spaceGuid: String) throws -> RoleSet {
        var set = RoleSet(isAdmin: actor.isAdmin)
        let rows = try conn.query(
            """
            SELECT r.type, r.space_guid IS NOT NULL AS is_space FROM roles r
            WHERE r.user_guid = $1 AND (r.space_guid = $2
              OR r.organization_guid = (SELECT organization_guid FROM spaces WHERE guid = $2))
            """, [actor.userGuid, spaceGuid])
        for row in rows {
            let type = try row.decode("type", as: String.self)
            if try row.decode("is_space", as: Bool.self) { set.space.insert(type) } else { set.organization.insert(type) }
        }
        return set
    }

    /// Roles for an organization: its own and whether any space role inside it exists.
    static func forOrganization(_ conn: PostgresConnection, actor: Actor, organizationGuid: String) throws -> RoleSet {
        var set = RoleSet(isAdmin: actor.isAdmin)
        let rows = try conn.query(
            """
            SELECT r.type, r.space_guid IS NOT NULL AS is_space FROM roles r
            WHERE r.user_guid = $1 AND (r.organization_guid = $2
              OR r.space_guid IN (SELECT guid FROM spaces WHERE organization_guid = $2))
            """, [actor.userGuid, organizationGuid])
        for row in rows {
            let type = try row.decode("type", as: String.self)
            if try row.decode("is_space", as: Bool.self) { set.space.insert(type) } else { set.organization.insert(type) }
        }
        return set
    }

    var canSeeSpace: Bool {
        isAdmin || !space.isEmpty || !organization.isDisjoint(with: ["organization_manager", "organization_auditor"])
    }
    var canSeeOrganization: Bool { isAdmin || !organization.isEmpty || !space.isEmpty }
    var isSpaceDeveloper: Bool { isAdmin || space.contains("space_developer") }
    var isOrgManager: Bool { isAdmin || organization.contains("organization_manager") }
    var canManageSpaceRoles: Bool { isOrgManager || space.contains("space_manager") }
    var canUpdateSpace: Bool { isOrgManager || space.contains("space_manager") }
}

/// Audit events for every change.
enum AuditLog {
    struct Target {
        var guid: String
        var type: String
        var name: String
    }

    static func record(_ conn: PostgresConnection, _ type: String, actor: Actor, target: Target,
                       spaceGuid: String? = nil, organizationGuid: String? = nil, data: [String: JSONValueLike] = [:]) throws {
        let json = try String(decoding: JSONSerialization.data(withJSONObject: data.mapValues(\.any), options: [.sortedKeys]), as: UTF8.self)
        try conn.query(
            """
            INSERT INTO audit_events(guid, type, actor_guid, actor_type, actor_name, target_guid, target_type, target_name,
              space_guid, organization_guid, data)
            VALUES ($1, $2, $3, 'user', $4, $5, $6, $7, $8, $9, $10::jsonb)
            """,
            [UUID().uuidString.lowercased(), type, actor.userGuid, actor.username, target.guid, target.type, target.name,
             spaceGuid, organizationGuid, json])
    }
}

/// Plain values for audit `data` (kept to JSON-serialisable Foundation types).
enum JSONValueLike: Sendable {
    case string(String), int(Int), bool(Bool), strings([String]), object([String: JSONValueLike])
    var any: Any {
        switch self {
        case .string(let s): return s
        case .int(let i): return i
        case .bool(let b): return b
        case .strings(let a): return a
        case .object(let o): return o.mapValues(\.any)
        }
    }
}

/// Row helpers shared by the resources.
enum Rows {
    static func timestamp(_ row: PostgresRow, _ column: String) throws -> String {
        let date = try row.decode(column, as: Date.self)
        return iso8601(date)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (CF's second precision) via gmtime_r: much cheaper than a format style per row.
    static func iso8601(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    static func metadata(_ row: PostgresRow) throws -> Metadata {
        Metadata(labels: try stringMap(row, "labels"), annotations: try stringMap(row, "annotations"))
    }

    static func stringMap(_ row: PostgresRow, _ column: String) throws -> [String: String] {
        // Most rows carry no labels: skip the decoder for the empty object.
        guard let text = row[column], text != "{}" else { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
    }

    static func json(_ value: [String: String]) -> PostgresJSON {
        let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        return PostgresJSON(String(decoding: data, as: UTF8.self))
    }

    static func newGuid() -> String { UUID().uuidString.lowercased() }

    static func isGuid(_ s: String) -> Bool { UUID(uuidString: s) != nil }
}
