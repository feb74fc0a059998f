import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/spaces`.
struct SpacesController {
    let services: Services
    static let columns = "spaces.guid, spaces.name, spaces.organization_guid, spaces.labels, spaces.annotations, spaces.created_at, spaces.updated_at"

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("spaces", use: list)
        group.post("spaces", use: create)
        group.get("spaces/:guid", use: get)
        group.patch("spaces/:guid", use: update)
        group.delete("spaces/:guid", use: delete)
    }

    func resource(_ row: PostgresRow) throws -> SpaceResource {
        let guid = try row.decode("guid", as: String.self)
        let org = try row.decode("organization_guid", as: String.self)
        return SpaceResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            name: try row.decode("name", as: String.self),
            relationships: ["organization": ToOneRelationship(guid: org), "quota": ToOneRelationship(guid: nil)],
            metadata: try Rows.metadata(row),
            links: ["self": services.link("/v3/spaces/\(guid)"), "organization": services.link("/v3/organizations/\(org)"),
                    "apply_manifest": services.link("/v3/spaces/\(guid)/actions/apply_manifest", post: true)])
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["names", "guids", "organization_guids"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at", "name": "name"])
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("spaces.guid IN (\(Visibility.spaces(filter.bind(actor.userGuid))))") }
        if let names = try query.parameters.list("names") { filter.add("spaces.name = ANY(\(filter.bind(names))::text[])") }
        if let guids = try query.guids("guids") { filter.add("spaces.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let orgs = try query.guids("organization_guids") { filter.add("spaces.organization_guid = ANY(\(filter.bind(orgs))::uuid[])") }
        query.applyLabels(to: &filter, column: "spaces.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "spaces", table: "spaces", filter: filter, query: query,
                                       path: "/v3/spaces") { try SpacesController(services: services).resource($0) }
    }

    /// Loads a visible space with the actor's roles around it (404 when not visible).
    static func load(_ conn: PostgresConnection, guid: String, actor: Actor, resource: String = "Space") throws -> (PostgresRow, RoleSet) {
        guard let row = try conn.query("SELECT \(columns) FROM spaces WHERE guid = $1", [guid]).first else {
            throw APIError.notFound(resource)
        }
        let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: guid)
        guard roles.canSeeSpace else { throw APIError.notFound(resource) }
        return (row, roles)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Space")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor).0 }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreateSpaceRequest.self, from: request, allowedKeys: ["name", "relationships", "metadata"])
        try Validate.name(body.name)
        let org = try Validate.relationshipGuid(body.relationships.organization, "organization")
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let row = try await services.db.write { conn in
            let roles = try RoleSet.forOrganization(conn, actor: actor, organizationGuid: org)
            guard try conn.query("SELECT 1 FROM organizations WHERE guid = $1", [org]).first != nil, roles.canSeeOrganization else {
                throw APIError.unprocessable("Invalid organization. Ensure the organization exists and you have access to it.")
            }
            guard roles.isOrgManager else { throw APIError.notAuthorized() }
            let guid = Rows.newGuid()
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    """
                    INSERT INTO spaces(guid, name, organization_guid, labels, annotations) VALUES ($1, $2, $3, $4, $5)
                    RETURNING \(Self.columns)
                    """, [guid, body.name, org, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("Name must be unique per organization")
            }
            try AuditLog.record(conn, "audit.space.create", actor: actor, target: .init(guid: guid, type: "space", name: body.name),
                                spaceGuid: guid, organizationGuid: org)
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func update(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Space")
        let body = try await services.body.decode(RenameRequest.self, from: request, allowedKeys: ["name", "metadata"])
        if let name = body.name { try Validate.name(name) }
        let row = try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
            guard roles.canUpdateSpace else { throw APIError.notAuthorized() }
            let metadata = try Labels.merge(try Rows.metadata(row), body.metadata)
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    """
                    UPDATE spaces SET name = coalesce($2, name), labels = $3, annotations = $4, updated_at = now()
                    WHERE guid = $1 RETURNING \(Self.columns)
                    """, [guid, body.name, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("Name must be unique per organization")
            }
            try AuditLog.record(conn, "audit.space.update", actor: actor,
                                target: .init(guid: guid, type: "space", name: try rows.rows[0].decode("name")),
                                spaceGuid: guid, organizationGuid: try row.decode("organization_guid"))
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Space")
        let job = try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
            guard roles.isOrgManager else { throw APIError.notAuthorized() }
            try conn.query("DELETE FROM spaces WHERE guid = $1", [guid])
            try AppsController.bumpRoutes(conn)
            try AuditLog.record(conn, "audit.space.delete-request", actor: actor,
                                target: .init(guid: guid, type: "space", name: try row.decode("name")),
                                spaceGuid: guid, organizationGuid: try row.decode("organization_guid"))
            return try Services.completedJob(conn, operation: "space.delete", actor: actor)
        }
        return services.accepted(job: job)
    }
}
