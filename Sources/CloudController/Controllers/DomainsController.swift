import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/domains`: shared domains (admin) and private domains owned by an organization.
struct DomainsController {
    let services: Services
    static let columns = "domains.guid, domains.name, domains.internal, domains.organization_guid, domains.labels, domains.annotations, domains.created_at, domains.updated_at"

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("domains", use: list)
        group.post("domains", use: create)
        group.get("domains/:guid", use: get)
        group.delete("domains/:guid", use: delete)
        group.get("domains/:guid/route_reservations", use: routeReservations)
    }

    func resource(_ row: PostgresRow) throws -> DomainResource {
        let guid = try row.decode("guid", as: String.self)
        let org = try row.decode("organization_guid", as: String?.self)
        return DomainResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            name: try row.decode("name"), internal: try row.decode("internal"),
            relationships: ["organization": ToOneRelationship(guid: org)], metadata: try Rows.metadata(row),
            links: ["self": services.link("/v3/domains/\(guid)"),
                    "route_reservations": services.link("/v3/domains/\(guid)/route_reservations")])
    }

    /// Shared domains are visible to all; private ones to members of the owning organization.
    static func visibleFilter(_ filter: inout SQLFilter, actor: Actor) {
        guard !actor.isAdmin else { return }
        filter.add("(domains.organization_guid IS NULL OR domains.organization_guid IN (\(Visibility.organizations(filter.bind(actor.userGuid)))))")
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["names", "guids", "organization_guids"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at", "name": "name"])
        var filter = SQLFilter()
        Self.visibleFilter(&filter, actor: actor)
        if let names = try query.parameters.list("names") { filter.add("domains.name = ANY(\(filter.bind(names.map { $0.lowercased() }))::text[])") }
        if let guids = try query.guids("guids") { filter.add("domains.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let orgs = try query.guids("organization_guids") { filter.add("domains.organization_guid = ANY(\(filter.bind(orgs))::uuid[])") }
        query.applyLabels(to: &filter, column: "domains.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "domains", table: "domains", filter: filter, query: query,
                                       path: "/v3/domains") { try DomainsController(services: services).resource($0) }
    }

    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> PostgresRow {
        var filter = SQLFilter(parameters: [guid])
        filter.add("domains.guid = $1")
        visibleFilter(&filter, actor: actor)
        guard let row = try conn.query("SELECT \(columns) FROM domains \(filter.whereSQL)", filter.parameters).first else {
            throw APIError.notFound("Domain")
        }
        return row
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Domain")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor) }
        return try JSONResponse.make(try resource(row))
    }

    /// `GET /v3/domains/:guid/route_reservations?host=&path=`: whether a route with that host and
    /// path exists on the domain, in any space (`{"matching_route": true}`), so that a client can
    /// tell a taken route before it creates anything. The answer names no space, app or owner.
    @Sendable func routeReservations(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Domain")
        let parameters = try QueryParameters(rawQuery: request.uri.query)
        try parameters.requireOnly(["host", "path"])
        let host = (parameters["host"] ?? "").lowercased()
        let path = parameters["path"] ?? ""
        try RoutesController.validate(host: host, path: path)
        let matching = try await services.db.read { conn in
            _ = try Self.load(conn, guid: guid, actor: actor)
            return try !conn.query("SELECT 1 FROM routes WHERE domain_guid = $1 AND host = $2 AND path = $3",
                                   [guid, host, path]).rows.isEmpty
        }
        return try JSONResponse.make(RouteReservation(matchingRoute: matching))
    }

    /// DNS names: labels of letters, digits and hyphens, at least two labels, 253 characters at most.
    static func validateDomainName(_ name: String) throws {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let valid = name.count <= 253 && labels.count >= 2 && labels.allSatisfy { label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
        guard valid else { throw APIError.unprocessable("Name must be a valid domain name such as 'apps.example.com'") }
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreateDomainRequest.self, from: request,
                                                  allowedKeys: ["name", "internal", "relationships", "metadata"])
        let name = body.name.lowercased()
        try Self.validateDomainName(name)
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let org = try body.relationships?.organization.map { try Validate.relationshipGuid($0, "organization") }
        let row = try await services.db.write { conn in
            if let org {
                let roles = try RoleSet.forOrganization(conn, actor: actor, organizationGuid: org)
                guard try conn.query("SELECT 1 FROM organizations WHERE guid = $1", [org]).first != nil, roles.canSeeOrganization else {
                    throw APIError.unprocessable("Invalid organization. Ensure that the organization exists and you have access to it.")
                }
                guard roles.isOrgManager else { throw APIError.notAuthorized() }
            } else {
                guard actor.isAdmin else { throw APIError.notAuthorized() }
            }
            let guid = Rows.newGuid()
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    """
                    INSERT INTO domains(guid, name, internal, organization_guid, labels, annotations) VALUES ($1, $2, $3, $4, $5, $6)
                    RETURNING \(Self.columns)
                    """, [guid, name, body.internal ?? false, org, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("The domain name \"\(name)\" is already in use")
            }
            try AuditLog.record(conn, "audit.domain.create", actor: actor, target: .init(guid: guid, type: "domain", name: name),
                                organizationGuid: org)
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Domain")
        let job = try await services.db.write { conn in
            let row = try Self.load(conn, guid: guid, actor: actor)
            if let org = try row.decode("organization_guid", as: String?.self) {
                guard try RoleSet.forOrganization(conn, actor: actor, organizationGuid: org).isOrgManager else { throw APIError.notAuthorized() }
            } else {
                guard actor.isAdmin else { throw APIError.notAuthorized() }
            }
            try conn.query("DELETE FROM domains WHERE guid = $1", [guid])
            try AppsController.bumpRoutes(conn)
            try AuditLog.record(conn, "audit.domain.delete-request", actor: actor,
                                target: .init(guid: guid, type: "domain", name: try row.decode("name")))
            return try Services.completedJob(conn, operation: "domain.delete", actor: actor)
        }
        return services.accepted(job: job)
    }
}
