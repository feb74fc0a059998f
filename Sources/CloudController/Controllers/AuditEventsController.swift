import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/audit_events`: events of the spaces and organizations the caller may see; platform-wide
/// events (users, stacks, shared domains) only for admins.
struct AuditEventsController {
    let services: Services
    static let columns = """
        audit_events.guid, audit_events.type, audit_events.actor_guid, audit_events.actor_type, audit_events.actor_name,
        audit_events.target_guid, audit_events.target_type, audit_events.target_name, audit_events.space_guid,
        audit_events.organization_guid, audit_events.data, audit_events.created_at
        """

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("audit_events", use: list)
        group.get("audit_events/:guid", use: get)
    }

    func resource(_ row: PostgresRow) throws -> AuditEventResource {
        let guid = try row.decode("guid", as: String.self)
        let data = row["data"].flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) } ?? .object([:])
        return AuditEventResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), type: try row.decode("type"),
            actor: .init(guid: try row.decode("actor_guid"), type: try row.decode("actor_type"), name: try row.decode("actor_name")),
            target: .init(guid: try row.decode("target_guid"), type: try row.decode("target_type"), name: try row.decode("target_name")),
            data: data,
            space: try row.decode("space_guid", as: String?.self).map { .init(guid: $0) },
            organization: try row.decode("organization_guid", as: String?.self).map { .init(guid: $0) },
            links: ["self": services.link("/v3/audit_events/\(guid)")])
    }

    static func visibleFilter(_ filter: inout SQLFilter, actor: Actor) {
        guard !actor.isAdmin else { return }
        let user = filter.bind(actor.userGuid)
        filter.add("""
            ((audit_events.space_guid IS NOT NULL AND audit_events.space_guid IN (\(Visibility.spaces(user))))
             OR (audit_events.space_guid IS NULL AND audit_events.organization_guid IN (\(Visibility.organizations(user)))))
            """)
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query),
                                  filters: ["guids", "types", "target_guids", "space_guids", "organization_guids"],
                                  orderable: ["created_at": "created_at"], labels: false)
        var filter = SQLFilter()
        Self.visibleFilter(&filter, actor: actor)
        if let guids = try query.guids("guids") { filter.add("audit_events.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let types = try query.parameters.list("types") { filter.add("audit_events.type = ANY(\(filter.bind(types))::text[])") }
        if let targets = try query.parameters.list("target_guids") { filter.add("audit_events.target_guid = ANY(\(filter.bind(targets))::text[])") }
        if let spaces = try query.guids("space_guids") { filter.add("audit_events.space_guid = ANY(\(filter.bind(spaces))::uuid[])") }
        if let orgs = try query.guids("organization_guids") { filter.add("audit_events.organization_guid = ANY(\(filter.bind(orgs))::uuid[])") }
        let services = self.services
        return try await services.list(select: Self.columns, from: "audit_events", table: "audit_events", filter: filter, query: query,
                                       path: "/v3/audit_events") { try AuditEventsController(services: services).resource($0) }
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Event")
        let row = try await services.db.read { conn in
            var filter = SQLFilter(parameters: [guid])
            filter.add("audit_events.guid = $1")
            Self.visibleFilter(&filter, actor: actor)
            return try conn.query("SELECT \(Self.columns) FROM audit_events \(filter.whereSQL)", filter.parameters).first
        }
        guard let row else { throw APIError.notFound("Event") }
        return try JSONResponse.make(try resource(row))
    }
}

/// `/v3/jobs/:guid`: the asynchronous operations this user started.
struct JobsController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("jobs/:guid", use: get)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Job")
        let row = try await services.db.read { conn in
            try conn.query("SELECT guid, operation, state, created_at, updated_at FROM jobs WHERE guid = $1 AND (user_guid = $2 OR $3)",
                           [guid, actor.userGuid, actor.isAdmin]).first
        }
        guard let row else { throw APIError.notFound("Job") }
        return try JSONResponse.make(JobResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            operation: try row.decode("operation"), state: try row.decode("state"), errors: [],
            links: ["self": services.link("/v3/jobs/\(guid)")]))
    }
}

/// `/internal/v1/`: the other components' API, opened only by the component credential.
struct InternalController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("v1/info", use: info)
    }

    struct InternalInfo: Codable, Sendable {
        var version: String
        var schemaVersion: Int
        var routesVersion: Int
        var component: String
        enum CodingKeys: String, CodingKey {
            case version, schemaVersion = "schema_version", routesVersion = "routes_version", component
        }
    }

    @Sendable func info(_ request: Request, context: ControllerContext) async throws -> Response {
        let (schema, routes) = try await services.db.read { conn in
            (try conn.query("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").first?.decode("v", as: Int.self) ?? 0,
             try conn.query("SELECT version FROM platform_versions WHERE name = 'routes'").first?.decode("version", as: Int.self) ?? 0)
        }
        return try JSONResponse.make(InternalInfo(version: PlatformVersion.current, schemaVersion: schema, routesVersion: routes,
                                                  component: context.component ?? "unknown"))
    }
}
