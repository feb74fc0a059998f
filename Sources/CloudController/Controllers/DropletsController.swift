import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/droplets` and an app's current droplet. A droplet comes from staging or, as in CF, from
/// a direct upload (`POST /v3/droplets` then `POST /v3/droplets/:guid/upload` with a tar.gz
/// validated entry by entry). Each app keeps its last `keep` staged droplets; older ones go
/// (their blobs are collected by the janitor).
struct DropletsController {
    let services: Services
    static let keep = 5
    static let columns = """
        droplets.guid, droplets.app_guid, droplets.package_guid, droplets.state, droplets.error, droplets.process_types,
        droplets.buildpacks, droplets.stack, droplets.blob_sha256, droplets.labels, droplets.annotations,
        droplets.created_at, droplets.updated_at
        """

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("droplets", use: list)
        group.post("droplets", use: create)
        group.get("droplets/:guid", use: get)
        group.delete("droplets/:guid", use: delete)
        group.post("droplets/:guid/upload", use: upload)
        group.get("apps/:guid/droplets", use: listForApp)
        group.get("apps/:guid/droplets/current", use: current)
        group.get("apps/:guid/relationships/current_droplet", use: currentRelationship)
        group.patch("apps/:guid/relationships/current_droplet", use: setCurrent)
    }

    func resource(_ row: PostgresRow) throws -> DropletResource {
        let guid = try row.decode("guid", as: String.self)
        let app = try row.decode("app_guid", as: String.self)
        let processTypes = row["process_types"].flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
        let buildpacks = row["buildpacks"].flatMap { try? JSONDecoder().decode([DropletResource.BuildpackInfo].self, from: Data($0.utf8)) } ?? []
        var relationships = ["app": ToOneRelationship(guid: app)]
        if let package = try row.decode("package_guid", as: String?.self) { relationships["package"] = ToOneRelationship(guid: package) }
        return DropletResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            state: try row.decode("state"), error: try row.decode("error", as: String?.self), processTypes: processTypes,
            checksum: try row.decode("blob_sha256", as: String?.self), buildpacks: buildpacks, stack: try row.decode("stack", as: String?.self),
            relationships: relationships, metadata: try Rows.metadata(row),
            links: ["self": services.link("/v3/droplets/\(guid)"), "app": services.link("/v3/apps/\(app)"),
                    "upload": services.link("/v3/droplets/\(guid)/upload", post: true),
                    "assign_current_droplet": Link(href: services.url("/v3/apps/\(app)/relationships/current_droplet"), method: "PATCH")])
    }

    private func listResponse(_ request: Request, actor: Actor, app: String?, path: String) async throws -> Response {
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["guids", "states", "app_guids", "space_guids"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at"])
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("apps.space_guid IN (\(Visibility.spaces(filter.bind(actor.userGuid))))") }
        if let app { filter.add("droplets.app_guid = \(filter.bind(app))") }
        if let guids = try query.guids("guids") { filter.add("droplets.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let states = try query.parameters.list("states") { filter.add("droplets.state = ANY(\(filter.bind(states))::text[])") }
        if let apps = try query.guids("app_guids") { filter.add("droplets.app_guid = ANY(\(filter.bind(apps))::uuid[])") }
        if let spaces = try query.guids("space_guids") { filter.add("apps.space_guid = ANY(\(filter.bind(spaces))::uuid[])") }
        query.applyLabels(to: &filter, column: "droplets.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "droplets JOIN apps ON apps.guid = droplets.app_guid",
                                       table: "droplets", filter: filter, query: query, path: path) {
            try DropletsController(services: services).resource($0)
        }
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        try await listResponse(request, actor: try context.requireActor(), app: nil, path: "/v3/droplets")
    }

    @Sendable func listForApp(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        _ = try await services.db.read { conn in try AppsController.load(conn, guid: app, actor: actor).0["guid"] }
        return try await listResponse(request, actor: actor, app: app, path: "/v3/apps/\(app)/droplets")
    }

    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> (PostgresRow, RoleSet) {
        guard let row = try conn.query(
            "SELECT \(columns), apps.space_guid FROM droplets JOIN apps ON apps.guid = droplets.app_guid WHERE droplets.guid = $1",
            [guid]).first
        else { throw APIError.notFound("Droplet") }
        let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: try row.decode("space_guid"))
        guard roles.canSeeSpace else { throw APIError.notFound("Droplet") }
        return (row, roles)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Droplet")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor).0 }
        return try JSONResponse.make(try resource(row))
    }

    static func validateProcessTypes(_ types: [String: String]?) throws {
        for (type, command) in types ?? [:] {
            try Validate.name(type, field: "process type", max: 255)
            guard command.utf8.count <= 4096, !command.contains("\0") else {
                throw APIError.unprocessable("Process type '\(type)' has a command over 4096 bytes or with a NUL byte")
            }
        }
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreateDropletRequest.self, from: request, allowedKeys: ["relationships", "process_types", "metadata"])
        let app = try Validate.relationshipGuid(body.relationships.app, "app")
        try Self.validateProcessTypes(body.processTypes)
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let processTypes = try body.processTypes.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let row = try await services.db.write { conn in
            guard let appRow = try conn.query("SELECT name, space_guid, stack FROM apps WHERE guid = $1", [app]).first else {
                throw APIError.unprocessable("Invalid app. Ensure that the app exists and you have access to it.")
            }
            let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: try appRow.decode("space_guid"))
            guard roles.canSeeSpace else { throw APIError.unprocessable("Invalid app. Ensure that the app exists and you have access to it.") }
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let guid = Rows.newGuid()
            try conn.query(
                "INSERT INTO droplets(guid, app_guid, process_types, stack, labels, annotations) VALUES ($1, $2, $3::jsonb, $4, $5, $6)",
                [guid, app, processTypes, try appRow.decode("stack", as: String?.self), Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            try AuditLog.record(conn, "audit.app.droplet.create", actor: actor, target: .init(guid: app, type: "app", name: try appRow.decode("name")),
                                spaceGuid: try appRow.decode("space_guid"), data: ["droplet_guid": .string(guid)])
            return try Self.load(conn, guid: guid, actor: actor).0
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func upload(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Droplet")
        try await services.acceptUpload(
            request, table: "droplets", noun: "Droplet", guid: guid, storedState: "STAGED", formatHint: " holding the droplet (tar.gz)",
            authorize: { conn in
                let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
                guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
                return try row.decode("state", as: String.self)
            },
            afterStored: { conn, app in try Self.prune(conn, app: app) })
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor).0 }
        return try JSONResponse.make(try resource(row), status: .accepted)
    }

    /// Keeps an app's newest `keep` staged droplets, always counting the current one in (kept
    /// however old it is).
    static func prune(_ conn: PostgresConnection, app: String) throws {
        let hasCurrent = try conn.query("SELECT droplet_guid IS NOT NULL AS current FROM apps WHERE guid = $1", [app]).first?
            .decode("current", as: Bool.self) ?? false
        try conn.query("""
            DELETE FROM droplets WHERE guid IN (
              SELECT d.guid FROM droplets d JOIN apps a ON a.guid = d.app_guid
              WHERE d.app_guid = $1 AND d.state = 'STAGED' AND d.guid IS DISTINCT FROM a.droplet_guid
              ORDER BY d.created_at DESC, d.id DESC OFFSET $2)
            """, [app, hasCurrent ? keep - 1 : keep])
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Droplet")
        let cfAPI = services.config.externalURL
        let job = try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            try conn.query("DELETE FROM droplets WHERE guid = $1", [guid])
            try Placement.converge(conn, apps: [try row.decode("app_guid")], cfAPI: cfAPI)
            return try Services.completedJob(conn, operation: "droplet.delete", actor: actor)
        }
        return services.accepted(job: job)
    }

    @Sendable func current(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        let row = try await services.db.read { conn -> PostgresRow in
            let (appRow, _) = try AppsController.load(conn, guid: app, actor: actor)
            guard let droplet = try appRow.decode("droplet_guid", as: String?.self) else { throw APIError.notFound("Droplet") }
            return try Self.load(conn, guid: droplet, actor: actor).0
        }
        return try JSONResponse.make(try resource(row))
    }

    private func relationship(_ app: String, _ droplet: String?) -> CurrentDropletRelationship {
        CurrentDropletRelationship(guid: droplet, links: [
            "self": services.link("/v3/apps/\(app)/relationships/current_droplet"),
            "related": services.link("/v3/apps/\(app)/droplets/current"),
        ])
    }

    @Sendable func currentRelationship(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        let droplet = try await services.db.read { conn in
            try AppsController.load(conn, guid: app, actor: actor).0.decode("droplet_guid", as: String?.self)
        }
        return try JSONResponse.make(relationship(app, droplet))
    }

    @Sendable func setCurrent(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        let body = try await services.body.decode(SetCurrentDropletRequest.self, from: request, allowedKeys: ["data"])
        guard let droplet = body.data.guid, Rows.isGuid(droplet) else {
            throw APIError.unprocessable("Unable to assign current droplet. Ensure the droplet exists and belongs to this app.")
        }
        let dropletGuid = droplet.lowercased()
        let cfAPI = services.config.externalURL
        try await services.db.write { conn in
            let appRow = try AppsController.loadForWrite(conn, guid: app, actor: actor)
            guard let row = try conn.query("SELECT state FROM droplets WHERE guid = $1 AND app_guid = $2", [dropletGuid, app]).first else {
                throw APIError.unprocessable("Unable to assign current droplet. Ensure the droplet exists and belongs to this app.")
            }
            guard try row.decode("state", as: String.self) == "STAGED" else {
                throw APIError.unprocessable("Unable to assign current droplet: the droplet is not STAGED")
            }
            try conn.query("UPDATE apps SET droplet_guid = $2, updated_at = now() WHERE guid = $1", [app, dropletGuid])
            let (space, org) = try AppsController.spaceAndOrg(conn, appRow)
            try AuditLog.record(conn, "audit.app.droplet.mapped", actor: actor,
                                target: .init(guid: app, type: "app", name: try appRow.decode("name")), spaceGuid: space,
                                organizationGuid: org, data: ["request": .object(["droplet_guid": .string(dropletGuid)])])
            try AppsController.bumpRoutes(conn)
            try Placement.converge(conn, apps: [app], cfAPI: cfAPI)
        }
        return try JSONResponse.make(relationship(app, dropletGuid))
    }
}
