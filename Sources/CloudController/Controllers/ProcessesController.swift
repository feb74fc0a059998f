import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/processes` and `/v3/apps/:guid/processes`.
struct ProcessesController {
    let services: Services
    static let columns = """
        processes.guid, processes.app_guid, processes.type, processes.command, processes.instances, processes.memory_in_mb,
        processes.disk_in_mb, processes.health_check_type, processes.health_check_endpoint, processes.health_check_timeout,
        processes.health_check_invocation_timeout, processes.version, processes.labels, processes.annotations,
        processes.created_at, processes.updated_at
        """

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("processes", use: list)
        group.get("processes/:guid", use: get)
        group.patch("processes/:guid", use: update)
        group.post("processes/:guid/actions/scale", use: scale)
        group.get("apps/:guid/processes", use: listForApp)
        group.get("apps/:guid/processes/:type", use: getForApp)
        group.patch("apps/:guid/processes/:type", use: updateForApp)
        group.post("apps/:guid/processes/:type/actions/scale", use: scaleForApp)
        group.delete("processes/:guid/instances/:index", use: restartInstance)
        group.delete("apps/:guid/processes/:type/instances/:index", use: restartInstance)
    }

    static func createWeb(_ conn: PostgresConnection, appGuid: String, config: ControllerConfig) throws {
        try conn.query(
            "INSERT INTO processes(guid, app_guid, type, instances, memory_in_mb, disk_in_mb, version) VALUES ($1, $2, 'web', 1, $3, $4, $5)",
            [Rows.newGuid(), appGuid, config.defaultMemoryMB, config.defaultDiskMB, Rows.newGuid()])
    }

    func resource(_ row: PostgresRow) throws -> ProcessResource {
        let guid = try row.decode("guid", as: String.self)
        let app = try row.decode("app_guid", as: String.self)
        return ProcessResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            type: try row.decode("type"), command: try row.decode("command", as: String?.self),
            instances: try row.decode("instances"), memoryInMB: try row.decode("memory_in_mb"), diskInMB: try row.decode("disk_in_mb"),
            healthCheck: HealthCheck(
                type: try row.decode("health_check_type"),
                data: .init(timeout: try row.decode("health_check_timeout", as: Int?.self),
                            invocationTimeout: try row.decode("health_check_invocation_timeout", as: Int?.self),
                            endpoint: try row.decode("health_check_endpoint", as: String?.self))),
            relationships: ["app": ToOneRelationship(guid: app), "revision": ToOneRelationship(guid: nil)],
            metadata: try Rows.metadata(row), version: try row.decode("version"),
            links: ["self": services.link("/v3/processes/\(guid)"), "app": services.link("/v3/apps/\(app)"),
                    "scale": services.link("/v3/processes/\(guid)/actions/scale", post: true),
                    "stats": services.link("/v3/processes/\(guid)/stats")])
    }

    private func listQuery(_ request: Request) throws -> ListQuery {
        try ListQuery(try QueryParameters(rawQuery: request.uri.query),
                      filters: ["guids", "types", "app_guids", "space_guids", "organization_guids"],
                      orderable: ["created_at": "created_at", "updated_at": "updated_at"])
    }

    private func filtered(_ query: ListQuery, actor: Actor, appGuid: String?) throws -> SQLFilter {
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("apps.space_guid IN (\(Visibility.spaces(filter.bind(actor.userGuid))))") }
        if let appGuid { filter.add("processes.app_guid = \(filter.bind(appGuid))") }
        if let guids = try query.guids("guids") { filter.add("processes.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let types = try query.parameters.list("types") { filter.add("processes.type = ANY(\(filter.bind(types))::text[])") }
        if let apps = try query.guids("app_guids") { filter.add("processes.app_guid = ANY(\(filter.bind(apps))::uuid[])") }
        if let spaces = try query.guids("space_guids") { filter.add("apps.space_guid = ANY(\(filter.bind(spaces))::uuid[])") }
        if let orgs = try query.guids("organization_guids") {
            filter.add("apps.space_guid IN (SELECT guid FROM spaces WHERE organization_guid = ANY(\(filter.bind(orgs))::uuid[]))")
        }
        query.applyLabels(to: &filter, column: "processes.labels")
        return filter
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let query = try listQuery(request)
        let services = self.services
        return try await services.list(select: Self.columns, from: "processes JOIN apps ON apps.guid = processes.app_guid",
                                       table: "processes", filter: try filtered(query, actor: actor, appGuid: nil), query: query,
                                       path: "/v3/processes") { try ProcessesController(services: services).resource($0) }
    }

    @Sendable func listForApp(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        _ = try await services.db.read { conn in try AppsController.load(conn, guid: app, actor: actor).0["guid"] }
        let query = try listQuery(request)
        let services = self.services
        return try await services.list(select: Self.columns, from: "processes JOIN apps ON apps.guid = processes.app_guid",
                                       table: "processes", filter: try filtered(query, actor: actor, appGuid: app), query: query,
                                       path: "/v3/apps/\(app)/processes") { try ProcessesController(services: services).resource($0) }
    }

    /// Loads a visible process and its roles; by guid or by (app, type).
    static func load(_ conn: PostgresConnection, guid: String?, app: String?, type: String?, actor: Actor) throws -> (PostgresRow, RoleSet) {
        let row: PostgresRow?
        if let guid {
            row = try conn.query("SELECT \(columns), apps.space_guid FROM processes JOIN apps ON apps.guid = processes.app_guid WHERE processes.guid = $1", [guid]).first
        } else {
            row = try conn.query("SELECT \(columns), apps.space_guid FROM processes JOIN apps ON apps.guid = processes.app_guid WHERE processes.app_guid = $1 AND processes.type = $2", [app, type]).first
        }
        guard let row else { throw APIError.notFound("Process") }
        let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: try row.decode("space_guid"))
        guard roles.canSeeSpace else { throw APIError.notFound("Process") }
        return (row, roles)
    }

    private func target(_ context: ControllerContext) throws -> (guid: String?, app: String?, type: String?) {
        if context.parameters.get("type") != nil {
            let app = try services.guidParameter(context, resource: "App")
            return (nil, app, try context.parameters.require("type"))
        }
        return (try services.guidParameter(context, resource: "Process"), nil, nil)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let t = try target(context)
        let row = try await services.db.read { conn in try Self.load(conn, guid: t.guid, app: t.app, type: t.type, actor: actor).0 }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func getForApp(_ request: Request, context: ControllerContext) async throws -> Response {
        try await get(request, context: context)
    }

    static func validateHealthCheck(_ hc: UpdateProcessRequest.HealthCheckPatch?) throws {
        guard let hc else { return }
        if let type = hc.type, !["port", "http", "process"].contains(type) {
            throw APIError.unprocessable("Health check type must be 'port', 'http' or 'process'")
        }
        if let timeout = hc.data?.timeout, !(1...180).contains(timeout) {
            throw APIError.unprocessable("Health check timeout must be between 1 and 180 seconds")
        }
        if let invocation = hc.data?.invocationTimeout, !(1...60).contains(invocation) {
            throw APIError.unprocessable("Health check invocation_timeout must be between 1 and 60 seconds")
        }
        if let endpoint = hc.data?.endpoint {
            guard endpoint.hasPrefix("/"), endpoint.count <= 1024,
                  !endpoint.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) || $0 == " " })
            else { throw APIError.unprocessable("Health check endpoint must be a path starting with '/'") }
        }
    }

    @Sendable func update(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let t = try target(context)
        let body = try await services.body.decode(UpdateProcessRequest.self, from: request, allowedKeys: ["command", "health_check", "metadata"])
        if let command = body.command {
            guard command.utf8.count <= 4096, !command.contains("\0") else {
                throw APIError.unprocessable("Command must be at most 4096 bytes without NUL bytes")
            }
        }
        try Self.validateHealthCheck(body.healthCheck)
        let cfAPI = services.config.externalURL
        let row = try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: t.guid, app: t.app, type: t.type, actor: actor)
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let guid = try row.decode("guid", as: String.self)
            let metadata = try Labels.merge(try Rows.metadata(row), body.metadata)
            let hcType = try body.healthCheck?.type ?? (row.decode("health_check_type", as: String.self))
            var endpoint = try body.healthCheck?.data?.endpoint ?? (row.decode("health_check_endpoint", as: String?.self))
            if hcType != "http" { endpoint = nil } else if endpoint == nil { endpoint = "/" }
            let command: String? = try body.command.map { $0.isEmpty ? nil : $0 } ?? (row.decode("command", as: String?.self))
            let rows = try conn.query(
                """
                UPDATE processes SET command = $2, health_check_type = $3, health_check_endpoint = $4,
                  health_check_timeout = coalesce($5, health_check_timeout),
                  health_check_invocation_timeout = coalesce($6, health_check_invocation_timeout),
                  labels = $7, annotations = $8, updated_at = now()
                WHERE guid = $1 RETURNING \(Self.columns)
                """,
                [guid, command, hcType, endpoint, body.healthCheck?.data?.timeout, body.healthCheck?.data?.invocationTimeout,
                 Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            try Self.audit(conn, "audit.app.process.update", actor: actor, process: row, data: [:])
            try Placement.converge(conn, apps: [try row.decode("app_guid")], cfAPI: cfAPI)
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func updateForApp(_ request: Request, context: ControllerContext) async throws -> Response {
        try await update(request, context: context)
    }

    static func audit(_ conn: PostgresConnection, _ type: String, actor: Actor, process: PostgresRow, data: [String: JSONValueLike]) throws {
        let app = try process.decode("app_guid", as: String.self)
        let info = try conn.query("SELECT a.name, a.space_guid, s.organization_guid FROM apps a JOIN spaces s ON s.guid = a.space_guid WHERE a.guid = $1", [app]).rows[0]
        var data = data
        data["process_guid"] = .string(try process.decode("guid"))
        data["process_type"] = .string(try process.decode("type"))
        try AuditLog.record(conn, type, actor: actor, target: .init(guid: app, type: "app", name: try info.decode("name")),
                            spaceGuid: try info.decode("space_guid"), organizationGuid: try info.decode("organization_guid"), data: data)
    }

    @Sendable func scale(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let t = try target(context)
        let body = try await services.body.decode(ScaleRequest.self, from: request, allowedKeys: ["instances", "memory_in_mb", "disk_in_mb"])
        let config = services.config
        if let n = body.instances, !(0...config.maxInstances).contains(n) {
            throw APIError.unprocessable("Instances must be between 0 and \(config.maxInstances)")
        }
        if let m = body.memoryInMB, !(1...config.maxMemoryMB).contains(m) {
            throw APIError.unprocessable("Memory in mb must be between 1 and \(config.maxMemoryMB)")
        }
        if let d = body.diskInMB, !(1...config.maxDiskMB).contains(d) {
            throw APIError.unprocessable("Disk in mb must be between 1 and \(config.maxDiskMB)")
        }
        let cfAPI = config.externalURL
        let row = try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: t.guid, app: t.app, type: t.type, actor: actor)
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let guid = try row.decode("guid", as: String.self)
            let rows = try conn.query(
                """
                UPDATE processes SET instances = coalesce($2, instances), memory_in_mb = coalesce($3, memory_in_mb),
                  disk_in_mb = coalesce($4, disk_in_mb), updated_at = now()
                WHERE guid = $1 RETURNING \(Self.columns)
                """, [guid, body.instances, body.memoryInMB, body.diskInMB])
            var data: [String: JSONValueLike] = [:]
            if let n = body.instances { data["instances"] = .int(n) }
            if let m = body.memoryInMB { data["memory_in_mb"] = .int(m) }
            if let d = body.diskInMB { data["disk_in_mb"] = .int(d) }
            try Self.audit(conn, "audit.app.process.scale", actor: actor, process: row, data: ["request": .object(data)])
            try Placement.converge(conn, apps: [try row.decode("app_guid")], cfAPI: cfAPI)
            try AppsController.bumpRoutes(conn)
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row), status: .accepted)
    }

    @Sendable func scaleForApp(_ request: Request, context: ControllerContext) async throws -> Response {
        try await scale(request, context: context)
    }

    /// `DELETE /v3/processes/:guid/instances/:index`: restarts one instance. The instance leaves
    /// the desired placement (its agent stops it at its next assignment poll) and placement puts
    /// a new one at the same index, as it does for any missing instance of a started app.
    @Sendable func restartInstance(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let t = try target(context)
        guard let index = context.parameters.get("index").flatMap({ Int($0) }), index >= 0 else { throw APIError.notFound("Instance") }
        let cfAPI = services.config.externalURL
        try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: t.guid, app: t.app, type: t.type, actor: actor)
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let guid = try row.decode("guid", as: String.self)
            try Placement.lock(conn)
            let removed = try conn.query("DELETE FROM instances WHERE process_guid = $1 AND index = $2 RETURNING guid", [guid, index])
            guard removed.first != nil else { throw APIError.notFound("Instance") }
            try Self.audit(conn, "audit.app.process.terminate_instance", actor: actor, process: row, data: ["index": .int(index)])
            try Placement.converge(conn, apps: [try row.decode("app_guid")], cfAPI: cfAPI)
            try AppsController.bumpRoutes(conn)
        }
        return JSONResponse.noContent()
    }
}
