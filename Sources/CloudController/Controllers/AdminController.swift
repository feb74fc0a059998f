import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// Admin-only views of the platform's components: `/v3/admin/agents`, `/v3/admin/stagers`,
/// `/v3/admin/instances` (every instance as its agent reported it) and `/v3/admin/route_table`
/// (the table routers poll at `/internal/v1/routes`). Anyone else gets 403 CF-NotAuthorized.
struct AdminController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("admin/agents", use: agents)
        group.get("admin/stagers", use: stagers)
        group.get("admin/instances", use: instances)
        group.get("admin/route_table", use: routeTable)
    }

    private func requireAdmin(_ context: ControllerContext) throws {
        guard try context.requireActor().isAdmin else { throw APIError.notAuthorized() }
    }

    static let agentColumns = """
        agents.id, agents.host_address, agents.state, agents.agent_version, agents.stacks,
        agents.capacity_memory_mb, agents.capacity_disk_mb, agents.capacity_instances,
        agents.available_memory_mb, agents.available_disk_mb, agents.available_instances,
        agents.registered_at, agents.last_heartbeat_at,
        (SELECT count(*) FROM instances i WHERE i.agent_id = agents.id)::integer AS placed,
        (SELECT count(*) FROM instance_reports r WHERE r.agent_id = agents.id AND r.state = 'RUNNING')::integer AS running
        """

    static func agent(_ row: PostgresRow) throws -> AgentResource {
        AgentResource(
            id: try row.decode("id"), hostAddress: try row.decode("host_address"), state: try row.decode("state"),
            version: try row.decode("agent_version"), stacks: try row.decode("stacks"),
            capacity: .init(memoryInMB: try row.decode("capacity_memory_mb"), diskInMB: try row.decode("capacity_disk_mb"),
                            instances: try row.decode("capacity_instances")),
            available: .init(memoryInMB: try row.decode("available_memory_mb"), diskInMB: try row.decode("available_disk_mb"),
                             instances: try row.decode("available_instances")),
            placedInstances: try row.decode("placed"), runningInstances: try row.decode("running"),
            registeredAt: try Rows.timestamp(row, "registered_at"), lastSeenAt: try Rows.timestamp(row, "last_heartbeat_at"))
    }

    @Sendable func agents(_ request: Request, context: ControllerContext) async throws -> Response {
        try requireAdmin(context)
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["ids", "states"],
                                  orderable: ["id": "id", "last_seen_at": "last_heartbeat_at"], defaultOrder: "id")
        var filter = SQLFilter()
        if let ids = try query.parameters.list("ids") { filter.add("agents.id = ANY(\(filter.bind(ids))::text[])") }
        if let states = try query.parameters.list("states") { filter.add("agents.state = ANY(\(filter.bind(states))::text[])") }
        return try await services.list(select: Self.agentColumns, from: "agents", table: "agents", filter: filter, query: query,
                                       path: "/v3/admin/agents") { try Self.agent($0) }
    }

    @Sendable func stagers(_ request: Request, context: ControllerContext) async throws -> Response {
        try requireAdmin(context)
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["ids"],
                                  orderable: ["id": "id", "last_seen_at": "last_seen_at"], defaultOrder: "id")
        var filter = SQLFilter()
        if let ids = try query.parameters.list("ids") { filter.add("stagers.id = ANY(\(filter.bind(ids))::text[])") }
        return try await services.list(
            select: "stagers.id, stagers.stager_version, stagers.stacks, stagers.running, stagers.free_slots, stagers.first_seen_at, stagers.last_seen_at",
            from: "stagers", table: "stagers", filter: filter, query: query, path: "/v3/admin/stagers") { row in
            StagerResource(id: try row.decode("id"), version: try row.decode("stager_version"), stacks: try row.decode("stacks"),
                           running: try row.decode("running"), freeSlots: try row.decode("free_slots"),
                           firstSeenAt: try Rows.timestamp(row, "first_seen_at"), lastSeenAt: try Rows.timestamp(row, "last_seen_at"))
        }
    }

    @Sendable func instances(_ request: Request, context: ControllerContext) async throws -> Response {
        try requireAdmin(context)
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["agent_ids", "app_guids", "states"],
                                  orderable: ["agent_id": "agent_id", "app_guid": "app_guid", "since": "since"], defaultOrder: "agent_id")
        var filter = SQLFilter()
        if let ids = try query.parameters.list("agent_ids") { filter.add("instance_reports.agent_id = ANY(\(filter.bind(ids))::text[])") }
        if let apps = try query.guids("app_guids") { filter.add("instance_reports.app_guid = ANY(\(filter.bind(apps))::uuid[])") }
        if let states = try query.parameters.list("states") {
            filter.add("instance_reports.state = ANY(\(filter.bind(states.map { $0.uppercased() }))::text[])")
        }
        // instance_reports has no serial id; the GUID breaks ties in the order instead.
        return try await services.list(
            select: "instance_reports.*",
            from: """
                (SELECT r.instance_guid, r.instance_guid::text AS id, r.app_guid, coalesce(a.name, '') AS app_name, a.space_guid,
                   r.process_guid, coalesce(p.type, '') AS process_type, r.index, r.state, r.agent_id, ag.host_address, r.host_port,
                   r.since, r.uptime, r.details
                 FROM instance_reports r JOIN agents ag ON ag.id = r.agent_id
                   LEFT JOIN apps a ON a.guid = r.app_guid LEFT JOIN processes p ON p.guid = r.process_guid) AS instance_reports
                """,
            table: "instance_reports", filter: filter, query: query, path: "/v3/admin/instances") { row in
            InstanceResource(
                guid: try row.decode("instance_guid"), appGuid: try row.decode("app_guid"), appName: try row.decode("app_name"),
                spaceGuid: try row.decode("space_guid"), processGuid: try row.decode("process_guid"),
                processType: try row.decode("process_type"), index: try row.decode("index"), state: try row.decode("state"),
                agentId: try row.decode("agent_id"), hostAddress: try row.decode("host_address"), hostPort: try row.decode("host_port"),
                since: try row.decode("since"), uptime: try row.decode("uptime"), details: try row.decode("details"))
        }
    }

    @Sendable func routeTable(_ request: Request, context: ControllerContext) async throws -> Response {
        try requireAdmin(context)
        return try JSONResponse.make(try await services.db.read { conn in try RouteTableController.read(conn) })
    }
}
