import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

extension Services {
    /// Runs a counted, paged list query and renders the CF list envelope.
    ///
    /// `from` is the FROM/JOIN part, `filter` holds WHERE clauses (visibility included).
    func list<R: Codable & Sendable>(
        select: String, from: String, table: String, filter: SQLFilter, query: ListQuery, path: String,
        map: @escaping @Sendable (PostgresRow) throws -> R
    ) async throws -> Response {
        var filter = filter
        let limit = filter.bind(query.perPage)
        let offset = filter.bind(query.offset)
        let whereSQL = filter.whereSQL
        let parameters = filter.parameters
        let countParameters = Array(parameters.dropLast(2))
        let order = query.orderSQL(table: table)
        let (total, resources) = try await db.read { conn in
            let total = try conn.query("SELECT count(*) AS n FROM \(from) \(whereSQL)", countParameters).first?
                .decode("n", as: Int.self) ?? 0
            let rows = try conn.query("SELECT \(select) FROM \(from) \(whereSQL) \(order) LIMIT \(limit) OFFSET \(offset)", parameters)
            return (total, try rows.map(map))
        }
        return try JSONResponse.make(ListResponse(pagination: query.pagination(total: total, baseURL: config.externalURL, path: path),
                                                  resources: resources))
    }

    /// Records a finished asynchronous operation and answers 202 with its location, as CF does for deletes.
    static func completedJob(_ conn: PostgresConnection, operation: String, actor: Actor) throws -> String {
        let guid = Rows.newGuid()
        try conn.query("INSERT INTO jobs(guid, operation, state, user_guid) VALUES ($1, $2, 'COMPLETE', $3)",
                       [guid, operation, actor.userGuid])
        return guid
    }

    func accepted(job: String) -> Response {
        Response(status: .accepted, headers: [.location: url("/v3/jobs/\(job)")])
    }

    /// The GUID path parameter; a malformed one is simply not found.
    func guidParameter(_ context: ControllerContext, _ name: String = "guid", resource: String) throws -> String {
        guard let value = context.parameters.get(name), Rows.isGuid(value) else { throw APIError.notFound(resource) }
        return value.lowercased()
    }
}

/// Field rules shared by the resources.
enum Validate {
    /// Names: 1...255 characters, no control characters (they end up in logs, tables and shells).
    static func name(_ value: String, field: String = "name", max: Int = 255) throws {
        guard !value.isEmpty else { throw APIError.unprocessable("\(field.capitalizedFirst) can't be blank") }
        guard value.count <= max else { throw APIError.unprocessable("\(field.capitalizedFirst) is too long (maximum is \(max) characters)") }
        guard !value.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
            throw APIError.unprocessable("\(field.capitalizedFirst) must not contain control characters")
        }
    }

    /// A relationship GUID given in a body; malformed is 422 naming the relationship.
    static func relationshipGuid(_ relationship: RelationshipRequest?, _ name: String) throws -> String {
        guard let guid = relationship?.data.guid, Rows.isGuid(guid) else {
            throw APIError.unprocessable("Invalid \(name). Ensure that the \(name) exists and you have access to it.")
        }
        return guid.lowercased()
    }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
