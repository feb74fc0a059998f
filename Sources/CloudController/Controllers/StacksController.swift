import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/stacks`: readable by every user, created by admins.
struct StacksController {
    let services: Services
    static let columns = "stacks.guid, stacks.name, stacks.description, stacks.is_default, stacks.labels, stacks.annotations, stacks.created_at, stacks.updated_at"

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("stacks", use: list)
        group.get("stacks/:guid", use: get)
        group.post("stacks", use: create)
    }

    func resource(_ row: PostgresRow) throws -> StackResource {
        let guid = try row.decode("guid", as: String.self)
        return StackResource(guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
                             name: try row.decode("name"), description: try row.decode("description", as: String?.self),
                             isDefault: try row.decode("is_default"), metadata: try Rows.metadata(row),
                             links: ["self": services.link("/v3/stacks/\(guid)")])
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        _ = try context.requireActor()
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["names", "guids", "default"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at", "name": "name"])
        var filter = SQLFilter()
        if let names = try query.parameters.list("names") { filter.add("stacks.name = ANY(\(filter.bind(names))::text[])") }
        if let guids = try query.guids("guids") { filter.add("stacks.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let isDefault = try query.parameters.bool("default") { filter.add("stacks.is_default = \(filter.bind(isDefault))") }
        query.applyLabels(to: &filter, column: "stacks.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "stacks", table: "stacks", filter: filter, query: query,
                                       path: "/v3/stacks") { try StacksController(services: services).resource($0) }
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        _ = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Stack")
        let row = try await services.db.read { conn in try conn.query("SELECT \(Self.columns) FROM stacks WHERE guid = $1", [guid]).first }
        guard let row else { throw APIError.notFound("Stack") }
        return try JSONResponse.make(try resource(row))
    }

    struct CreateStackRequest: Codable, Sendable {
        var name: String
        var description: String?
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreateStackRequest.self, from: request, allowedKeys: ["name", "description"])
        guard actor.isAdmin else { throw APIError.notAuthorized() }
        try Validate.name(body.name, max: 250)
        let row = try await services.db.write { conn in
            let guid = Rows.newGuid()
            do {
                let rows = try conn.query("INSERT INTO stacks(guid, name, description) VALUES ($1, $2, $3) RETURNING \(Self.columns)",
                                          [guid, body.name, body.description])
                try AuditLog.record(conn, "audit.stack.create", actor: actor, target: .init(guid: guid, type: "stack", name: body.name))
                return rows.rows[0]
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("Name must be unique")
            }
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }
}
