import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/roles`: organization and space roles. Org managers grant roles in their org; space
/// managers grant space roles in their space; nobody else grants anything (403).
struct RolesController {
    let services: Services
    static let organizationTypes: Set<String> = ["organization_manager", "organization_user", "organization_auditor",
                                                 "organization_billing_manager"]
    static let spaceTypes: Set<String> = ["space_developer", "space_manager", "space_auditor", "space_supporter"]
    static let columns = "roles.guid, roles.type, roles.user_guid, roles.organization_guid, roles.space_guid, roles.created_at, roles.updated_at"

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("roles", use: list)
        group.post("roles", use: create)
        group.get("roles/:guid", use: get)
        group.delete("roles/:guid", use: delete)
    }

    func resource(_ row: PostgresRow) throws -> RoleResource {
        let guid = try row.decode("guid", as: String.self)
        let user = try row.decode("user_guid", as: String.self)
        let org = try row.decode("organization_guid", as: String?.self)
        let space = try row.decode("space_guid", as: String?.self)
        var links: Links = ["self": services.link("/v3/roles/\(guid)"), "user": services.link("/v3/users/\(user)")]
        if let org { links["organization"] = services.link("/v3/organizations/\(org)") }
        if let space { links["space"] = services.link("/v3/spaces/\(space)") }
        return RoleResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            type: try row.decode("type"),
            relationships: ["user": ToOneRelationship(guid: user), "organization": ToOneRelationship(guid: org),
                            "space": ToOneRelationship(guid: space)],
            links: links)
    }

    static func visibleFilter(_ filter: inout SQLFilter, actor: Actor) {
        guard !actor.isAdmin else { return }
        let user = filter.bind(actor.userGuid)
        filter.add("(roles.organization_guid IN (\(Visibility.organizations(user))) OR roles.space_guid IN (\(Visibility.spaces(user))))")
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let query = try ListQuery(
            try QueryParameters(rawQuery: request.uri.query),
            filters: ["guids", "types", "user_guids", "organization_guids", "space_guids"],
            orderable: ["created_at": "created_at", "updated_at": "updated_at"], labels: false)
        var filter = SQLFilter()
        Self.visibleFilter(&filter, actor: actor)
        if let guids = try query.guids("guids") { filter.add("roles.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let types = try query.parameters.list("types") {
            for t in types where !Self.organizationTypes.contains(t) && !Self.spaceTypes.contains(t) {
                throw APIError.badQuery("types: unknown role type '\(t.prefix(64))'")
            }
            filter.add("roles.type = ANY(\(filter.bind(types))::text[])")
        }
        if let users = try query.guids("user_guids") { filter.add("roles.user_guid = ANY(\(filter.bind(users))::uuid[])") }
        if let orgs = try query.guids("organization_guids") { filter.add("roles.organization_guid = ANY(\(filter.bind(orgs))::uuid[])") }
        if let spaces = try query.guids("space_guids") { filter.add("roles.space_guid = ANY(\(filter.bind(spaces))::uuid[])") }
        let services = self.services
        return try await services.list(select: Self.columns, from: "roles", table: "roles", filter: filter, query: query,
                                       path: "/v3/roles") { try RolesController(services: services).resource($0) }
    }

    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> PostgresRow {
        var filter = SQLFilter(parameters: [guid])
        filter.add("roles.guid = $1")
        visibleFilter(&filter, actor: actor)
        guard let row = try conn.query("SELECT \(columns) FROM roles \(filter.whereSQL)", filter.parameters).first else {
            throw APIError.notFound("Role")
        }
        return row
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Role")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor) }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreateRoleRequest.self, from: request, allowedKeys: ["type", "relationships"])
        let isOrgRole = Self.organizationTypes.contains(body.type)
        guard isOrgRole || Self.spaceTypes.contains(body.type) else {
            throw APIError.unprocessable("Type must be one of: " + (Self.organizationTypes.union(Self.spaceTypes)).sorted().joined(separator: ", "))
        }
        let userRef = body.relationships.user.data
        let row = try await services.db.write { conn in
            // The target user, by guid or username.
            let userRow: PostgresRow?
            if let guid = userRef.guid {
                userRow = Rows.isGuid(guid)
                    ? try conn.query("SELECT guid, username FROM users WHERE guid = $1", [guid.lowercased()]).first : nil
            } else if let username = userRef.username {
                userRow = try conn.query("SELECT guid, username FROM users WHERE username = $1 AND origin = $2",
                                         [username, userRef.origin ?? "uaa"]).first
            } else {
                throw APIError.unprocessable("relationships.user must name a user by guid or username")
            }
            guard let userRow else {
                throw APIError.unprocessable("Invalid user. Ensure that the user exists and you have access to it.")
            }
            let userGuid = try userRow.decode("guid", as: String.self)
            let organizationGuid: String
            var spaceGuid: String?
            if isOrgRole {
                guard body.relationships.space == nil else { throw APIError.unprocessable("An organization role cannot name a space") }
                organizationGuid = try Validate.relationshipGuid(body.relationships.organization, "organization")
                let roles = try RoleSet.forOrganization(conn, actor: actor, organizationGuid: organizationGuid)
                guard try conn.query("SELECT 1 FROM organizations WHERE guid = $1", [organizationGuid]).first != nil,
                      roles.canSeeOrganization
                else { throw APIError.unprocessable("Invalid organization. Ensure that the organization exists and you have access to it.") }
                guard roles.isOrgManager else { throw APIError.notAuthorized() }
            } else {
                guard body.relationships.organization == nil else { throw APIError.unprocessable("A space role cannot name an organization") }
                let space = try Validate.relationshipGuid(body.relationships.space, "space")
                guard let spaceRow = try conn.query("SELECT organization_guid FROM spaces WHERE guid = $1", [space]).first else {
                    throw APIError.unprocessable("Invalid space. Ensure that the space exists and you have access to it.")
                }
                let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: space)
                guard roles.canSeeSpace else {
                    throw APIError.unprocessable("Invalid space. Ensure that the space exists and you have access to it.")
                }
                guard roles.canManageSpaceRoles else { throw APIError.notAuthorized() }
                organizationGuid = try spaceRow.decode("organization_guid")
                spaceGuid = space
                let member = try conn.query("SELECT 1 FROM roles WHERE user_guid = $1 AND organization_guid = $2",
                                            [userGuid, organizationGuid]).first
                guard member != nil else {
                    throw APIError.unprocessable(
                        "Users cannot be assigned roles in a space if they do not have a role in that space's organization.")
                }
            }
            let guid = Rows.newGuid()
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    "INSERT INTO roles(guid, type, user_guid, organization_guid, space_guid) VALUES ($1, $2, $3, $4, $5) RETURNING \(Self.columns)",
                    [guid, body.type, userGuid, spaceGuid == nil ? organizationGuid : nil, spaceGuid])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("User '\(try userRow.decode("username", as: String.self))' already has '\(body.type)' role")
            }
            try AuditLog.record(conn, "audit.user.\(body.type)_add", actor: actor,
                                target: .init(guid: userGuid, type: "user", name: try userRow.decode("username")),
                                spaceGuid: spaceGuid, organizationGuid: organizationGuid, data: ["role_guid": .string(guid)])
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Role")
        let job = try await services.db.write { conn in
            let row = try Self.load(conn, guid: guid, actor: actor)
            let type = try row.decode("type", as: String.self)
            let userGuid = try row.decode("user_guid", as: String.self)
            let orgGuid = try row.decode("organization_guid", as: String?.self)
            let spaceGuid = try row.decode("space_guid", as: String?.self)
            if let spaceGuid {
                guard try RoleSet.forSpace(conn, actor: actor, spaceGuid: spaceGuid).canManageSpaceRoles else { throw APIError.notAuthorized() }
            } else if let orgGuid {
                guard try RoleSet.forOrganization(conn, actor: actor, organizationGuid: orgGuid).isOrgManager else {
                    throw APIError.notAuthorized()
                }
            }
            try conn.query("DELETE FROM roles WHERE guid = $1", [guid])
            let username = try conn.query("SELECT username FROM users WHERE guid = $1", [userGuid]).first?.decode("username", as: String.self)
            try AuditLog.record(conn, "audit.user.\(type)_remove", actor: actor,
                                target: .init(guid: userGuid, type: "user", name: username ?? ""), spaceGuid: spaceGuid,
                                organizationGuid: orgGuid, data: ["role_guid": .string(guid)])
            return try Services.completedJob(conn, operation: "role.delete", actor: actor)
        }
        return services.accepted(job: job)
    }
}
