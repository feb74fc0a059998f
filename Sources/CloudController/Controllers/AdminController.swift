import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// Admin-only views of the platform's components: `/v3/admin/agents`, `/v3/admin/stagers`,
/// `/v3/admin/instances` (every instance as its agent reported it), `/v3/admin/route_table`
/// (the table routers poll at `/internal/v1/routes`) and `/v3/admin/routers` (who polls it). Anyone else gets 403 CF-NotAuthorized.
struct AdminController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("admin/agents", use: agents)
        group.get("admin/stagers", use: stagers)
        group.get("admin/instances", use: instances)
        group.get("admin/route_table", use: routeTable)
        group.get("admin/routers", use: routers)
        group.get("admin/alerts", use: alerts)
        group.get("admin/alerts/:id", use: alert)
        group.get("admin/health_managers", use: healthManagers)
        group.post("admin/agents/:id/actions/drain", use: drain)
        group.post("admin/agents/:id/actions/undrain", use: undrain)
    }

    private func requireAdmin(_ context: ControllerContext) throws {
        guard try context.requireActor().isAdmin else { throw APIError.notAuthorized() }
    }

    static let agentColumns = """
        agents.id, agents.host_address, agents.state, agents.agent_version, agents.stacks,
        agents.capacity_memory_mb, agents.capacity_disk_mb, agents.capacity_instances,
        agents.available_memory_mb, agents.available_disk_mb, agents.available_instances,
        agents.registered_at, agents.last_heartbeat_at, agents.draining,
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
            registeredAt: try Rows.timestamp(row, "registered_at"), lastSeenAt: try Rows.timestamp(row, "last_heartbeat_at"),
            draining: try row.decode("draining"))
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
        // What a stager reported at its last poll lags behind: it parks a long poll (up to its
        // heartbeat interval) while builds run, and a build that ends meanwhile would still count.
        // The builds it holds are counted now; its free slots are its capacity at that poll
        // (running + free) less those.
        return try await services.list(
            select: "stagers.id, stagers.stager_version, stagers.stacks, stagers.running, stagers.free_slots, stagers.first_seen_at, stagers.last_seen_at",
            from: """
                (SELECT s.id, s.stager_version, s.stacks, held.n AS running,
                   greatest(0, s.running + s.free_slots - held.n) AS free_slots, s.first_seen_at, s.last_seen_at
                 FROM stagers s CROSS JOIN LATERAL
                   (SELECT count(*)::integer AS n FROM builds b WHERE b.claimed_by = s.id AND b.state = 'STAGING') held) AS stagers
                """,
            table: "stagers", filter: filter, query: query, path: "/v3/admin/stagers") { row in
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

    /// Routers as their last route-table poll described them, with the current table version.
    @Sendable func routers(_ request: Request, context: ControllerContext) async throws -> Response {
        try requireAdmin(context)
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["ids"],
                                  orderable: ["id": "id", "last_seen_at": "last_seen_at"], defaultOrder: "id", labels: false)
        var filter = SQLFilter()
        if let ids = try query.parameters.list("ids") { filter.add("routers.id = ANY(\(filter.bind(ids))::text[])") }
        // A router parked in a long-poll counts as seen until the poll's wait ends.
        return try await services.list(
            select: "routers.*",
            from: """
                (SELECT r.id, r.version, r.listen_address, r.table_version, r.table_age_seconds,
                   greatest(r.last_seen_at, least(coalesce(r.poll_deadline, r.last_seen_at), now())) AS last_seen_at,
                   coalesce((SELECT v.version FROM platform_versions v WHERE v.name = 'routes'), 0) AS current_table_version
                 FROM routers r) AS routers
                """,
            table: "routers", filter: filter, query: query, path: "/v3/admin/routers") { row in
            RouterResource(
                id: try row.decode("id"), version: try row.decode("version"), listenAddress: try row.decode("listen_address"),
                tableVersion: try row.decode("table_version", as: Int?.self),
                tableAgeSeconds: try row.decode("table_age_seconds", as: Int?.self),
                lastSeenAt: try Rows.timestamp(row, "last_seen_at"), currentTableVersion: try row.decode("current_table_version"))
        }
    }

    // MARK: Drain

    @Sendable func drain(_ request: Request, context: ControllerContext) async throws -> Response {
        try await setDraining(request, context, true)
    }

    @Sendable func undrain(_ request: Request, context: ControllerContext) async throws -> Response {
        try await setDraining(request, context, false)
    }

    /// Draining: nothing new is placed on the agent and the health manager moves its instances
    /// away, each replacement running before the old instance stops.
    private func setDraining(_ request: Request, _ context: ControllerContext, _ draining: Bool) async throws -> Response {
        try requireAdmin(context)
        let id = context.parameters.get("id") ?? ""
        guard AgentsController.isAgentID(id) else { throw APIError.notFound("Agent") }
        let actor = try context.requireActor()
        let agent = try await services.db.write { conn -> AgentResource in
            try Placement.lock(conn)
            guard try conn.query("UPDATE agents SET draining = $2 WHERE id = $1 RETURNING id", [id, draining]).first != nil else {
                throw APIError.notFound("Agent")
            }
            try HealthController.bump(conn)
            try AuditLog.record(conn, draining ? "audit.agent.drain" : "audit.agent.undrain", actor: actor,
                                target: .init(guid: id, type: "agent", name: id))
            return try Self.agent(try conn.query("SELECT \(Self.agentColumns) FROM agents WHERE id = $1", [id]).rows[0])
        }
        services.logger.info(draining ? "agent draining" : "agent no longer draining", metadata: ["agent.id": .string(id)])
        return try JSONResponse.make(agent)
    }

    // MARK: Alerts

    static let alertColumns = """
        alerts.id, alerts.name, alerts.state, alerts.labels, alerts.annotations, alerts.app_guid, alerts.starts_at,
        alerts.ends_at, alerts.fingerprint
        """

    static func alert(_ row: PostgresRow) throws -> AlertResource {
        let labels = try Rows.stringMap(row, "labels")
        return AlertResource(
            id: try row.decode("id"), name: try row.decode("name"), state: try row.decode("state"),
            severity: labels["severity"] ?? "warning", appGuid: try row.decode("app_guid", as: String?.self), labels: labels,
            annotations: try Rows.stringMap(row, "annotations"), startsAt: try Rows.timestamp(row, "starts_at"),
            endsAt: try row.decode("ends_at", as: Date?.self).map(Rows.iso8601), fingerprint: try row.decode("fingerprint"))
    }

    @Sendable func alerts(_ request: Request, context: ControllerContext) async throws -> Response {
        try requireAdmin(context)
        var query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["states", "app_guids", "names"],
                                  orderable: ["id": "id", "starts_at": "starts_at"], defaultOrder: "id", labels: false)
        if query.parameters["order_by"] == nil { query.descending = true }  // newest first
        var filter = SQLFilter()
        if let states = try query.parameters.list("states") {
            for state in states where state != "active" && state != "resolved" {
                throw APIError.badQuery("states must be active or resolved, got '\(state.prefix(40))'")
            }
            filter.add("alerts.state = ANY(\(filter.bind(states))::text[])")
        }
        if let apps = try query.guids("app_guids") { filter.add("alerts.app_guid = ANY(\(filter.bind(apps))::uuid[])") }
        if let names = try query.parameters.list("names") { filter.add("alerts.name = ANY(\(filter.bind(names))::text[])") }
        return try await services.list(select: Self.alertColumns, from: "alerts", table: "alerts", filter: filter, query: query,
                                       path: "/v3/admin/alerts") { try Self.alert($0) }
    }

    @Sendable func alert(_ request: Request, context: ControllerContext) async throws -> Response {
        try requireAdmin(context)
        guard let id = Int(context.parameters.get("id") ?? ""), id > 0 else { throw APIError.notFound("Alert") }
        let row = try await services.db.read { conn in
            try conn.query("SELECT \(Self.alertColumns) FROM alerts WHERE id = $1", [id]).first.map(Self.alert)
        }
        guard let row else { throw APIError.notFound("Alert") }
        return try JSONResponse.make(row)
    }

    @Sendable func healthManagers(_ request: Request, context: ControllerContext) async throws -> Response {
        try requireAdmin(context)
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: [],
                                  orderable: ["id": "id", "last_seen_at": "last_seen_at"], defaultOrder: "id", labels: false)
        return try await services.list(
            select: "health_managers.*",
            from: """
                (SELECT h.id, h.version, h.last_seen_at, (l.holder = h.id AND l.expires_at >= now()) IS TRUE AS active,
                   CASE WHEN l.holder = h.id THEN l.expires_at END AS lease_expires_at
                 FROM health_managers h LEFT JOIN component_leases l ON l.name = 'health-manager') AS health_managers
                """,
            table: "health_managers", filter: SQLFilter(), query: query, path: "/v3/admin/health_managers") { row in
            HealthManagerResource(
                id: try row.decode("id"), version: try row.decode("version"), active: try row.decode("active"),
                lastSeenAt: try Rows.timestamp(row, "last_seen_at"),
                leaseExpiresAt: try row.decode("lease_expires_at", as: Date?.self).map(Rows.iso8601))
        }
    }
}
