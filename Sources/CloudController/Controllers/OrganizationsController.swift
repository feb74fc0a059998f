import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/organizations`.
struct OrganizationsController {
    let services: Services
    static let columns = "organizations.guid, organizations.name, organizations.suspended, organizations.labels, organizations.annotations, organizations.created_at, organizations.updated_at"

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("organizations", use: list)
        group.post("organizations", use: create)
        group.get("organizations/:guid", use: get)
        group.patch("organizations/:guid", use: update)
        group.delete("organizations/:guid", use: delete)
    }

    func resource(_ row: PostgresRow) throws -> OrganizationResource {
        let guid = try row.decode("guid", as: String.self)
        return OrganizationResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            name: try row.decode("name", as: String.self), suspended: try row.decode("suspended", as: Bool.self),
            relationships: ["quota": ToOneRelationship(guid: nil)], metadata: try Rows.metadata(row),
            links: ["self": services.link("/v3/organizations/\(guid)"), "domains": services.link("/v3/organizations/\(guid)/domains")])
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["names", "guids"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at", "name": "name"])
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("organizations.guid IN (\(Visibility.organizations(filter.bind(actor.userGuid))))") }
        if let names = try query.parameters.list("names") { filter.add("organizations.name = ANY(\(filter.bind(names))::text[])") }
        if let guids = try query.guids("guids") { filter.add("organizations.guid = ANY(\(filter.bind(guids))::uuid[])") }
        query.applyLabels(to: &filter, column: "organizations.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "organizations", table: "organizations", filter: filter,
                                       query: query, path: "/v3/organizations") { try OrganizationsController(services: services).resource($0) }
    }

    /// Loads a visible organization with the actor's roles in it (404 when not visible).
    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> (PostgresRow, RoleSet) {
        guard let row = try conn.query("SELECT \(columns) FROM organizations WHERE guid = $1", [guid]).first else {
            throw APIError.notFound("Organization")
        }
        let roles = try RoleSet.forOrganization(conn, actor: actor, organizationGuid: guid)
        guard roles.canSeeOrganization else { throw APIError.notFound("Organization") }
        return (row, roles)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Organization")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor).0 }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreateOrganizationRequest.self, from: request,
                                                  allowedKeys: ["name", "suspended", "metadata"])
        guard actor.isAdmin else { throw APIError.notAuthorized() }
        try Validate.name(body.name)
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let row = try await services.db.write { conn in
            let guid = Rows.newGuid()
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    """
                    INSERT INTO organizations(guid, name, suspended, labels, annotations) VALUES ($1, $2, $3, $4, $5)
                    RETURNING \(Self.columns)
                    """, [guid, body.name, body.suspended ?? false, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("Organization '\(body.name)' already exists.")
            }
            try AuditLog.record(conn, "audit.organization.create", actor: actor,
                                target: .init(guid: guid, type: "organization", name: body.name), organizationGuid: guid)
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func update(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Organization")
        let body = try await services.body.decode(RenameRequest.self, from: request, allowedKeys: ["name", "suspended", "metadata"])
        if let name = body.name { try Validate.name(name) }
        let row = try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
            guard roles.isOrgManager else { throw APIError.notAuthorized() }
            if body.suspended != nil, !actor.isAdmin { throw APIError.notAuthorized() }
            let metadata = try Labels.merge(try Rows.metadata(row), body.metadata)
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    """
                    UPDATE organizations SET name = coalesce($2, name), suspended = coalesce($3, suspended), labels = $4,
                      annotations = $5, updated_at = now() WHERE guid = $1 RETURNING \(Self.columns)
                    """, [guid, body.name, body.suspended, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("Organization '\(body.name ?? "")' already exists.")
            }
            try AuditLog.record(conn, "audit.organization.update", actor: actor,
                                target: .init(guid: guid, type: "organization", name: try rows.rows[0].decode("name")),
                                organizationGuid: guid)
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Organization")
        let job = try await services.db.write { conn in
            let (row, _) = try Self.load(conn, guid: guid, actor: actor)
            guard actor.isAdmin else { throw APIError.notAuthorized() }
            try conn.query("DELETE FROM organizations WHERE guid = $1", [guid])
            try AppsController.bumpRoutes(conn)
            try AuditLog.record(conn, "audit.organization.delete-request", actor: actor,
                                target: .init(guid: guid, type: "organization", name: try row.decode("name")), organizationGuid: guid)
            return try Services.completedJob(conn, operation: "organization.delete", actor: actor)
        }
        return services.accepted(job: job)
    }
}
