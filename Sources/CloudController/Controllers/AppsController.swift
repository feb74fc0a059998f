import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/apps`, their actions and environment variables. A web process is created with the app.
struct AppsController {
    let services: Services
    static let columns = """
        apps.guid, apps.name, apps.space_guid, apps.state, apps.lifecycle_type, apps.buildpacks, apps.stack, apps.droplet_guid,
        apps.labels, apps.annotations, apps.created_at, apps.updated_at
        """

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("apps", use: list)
        group.post("apps", use: create)
        group.get("apps/:guid", use: get)
        group.patch("apps/:guid", use: update)
        group.delete("apps/:guid", use: delete)
        group.post("apps/:guid/actions/start", use: start)
        group.post("apps/:guid/actions/stop", use: stop)
        group.post("apps/:guid/actions/restart", use: restart)
        group.get("apps/:guid/environment_variables", use: getEnvironment)
        group.patch("apps/:guid/environment_variables", use: patchEnvironment)
    }

    func resource(_ row: PostgresRow) throws -> AppResource {
        let guid = try row.decode("guid", as: String.self)
        let space = try row.decode("space_guid", as: String.self)
        let droplet = try row.decode("droplet_guid", as: String?.self)
        let link = { (path: String, post: Bool) in services.link(path, post: post) }
        return AppResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            name: try row.decode("name"), state: try row.decode("state"),
            lifecycle: Lifecycle(type: try row.decode("lifecycle_type"),
                                 data: .init(buildpacks: try row.decode("buildpacks", as: [String].self),
                                             stack: try row.decode("stack", as: String?.self))),
            relationships: ["space": ToOneRelationship(guid: space), "current_droplet": ToOneRelationship(guid: droplet)],
            metadata: try Rows.metadata(row),
            links: ["self": link("/v3/apps/\(guid)", false), "space": link("/v3/spaces/\(space)", false),
                    "processes": link("/v3/apps/\(guid)/processes", false), "packages": link("/v3/apps/\(guid)/packages", false),
                    "environment_variables": link("/v3/apps/\(guid)/environment_variables", false),
                    "current_droplet": link("/v3/apps/\(guid)/droplets/current", false),
                    "droplets": link("/v3/apps/\(guid)/droplets", false), "routes": link("/v3/apps/\(guid)/routes", false),
                    "start": link("/v3/apps/\(guid)/actions/start", true), "stop": link("/v3/apps/\(guid)/actions/stop", true),
                    "restart": link("/v3/apps/\(guid)/actions/restart", true)])
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let query = try ListQuery(
            try QueryParameters(rawQuery: request.uri.query),
            filters: ["names", "guids", "space_guids", "organization_guids", "stacks", "lifecycle_type", "include"],
            orderable: ["created_at": "created_at", "updated_at": "updated_at", "name": "name", "state": "state"])
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("apps.space_guid IN (\(Visibility.spaces(filter.bind(actor.userGuid))))") }
        if let names = try query.parameters.list("names") { filter.add("apps.name = ANY(\(filter.bind(names))::text[])") }
        if let guids = try query.guids("guids") { filter.add("apps.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let spaces = try query.guids("space_guids") { filter.add("apps.space_guid = ANY(\(filter.bind(spaces))::uuid[])") }
        if let orgs = try query.guids("organization_guids") {
            filter.add("apps.space_guid IN (SELECT guid FROM spaces WHERE organization_guid = ANY(\(filter.bind(orgs))::uuid[]))")
        }
        if let stacks = try query.parameters.list("stacks") { filter.add("apps.stack = ANY(\(filter.bind(stacks))::text[])") }
        if let lifecycle = query.parameters["lifecycle_type"] { filter.add("apps.lifecycle_type = \(filter.bind(lifecycle))") }
        if let include = query.parameters["include"], !["space", "space.organization"].contains(include) {
            throw APIError.badQuery("include must be one of: 'space', 'space.organization'")
        }
        query.applyLabels(to: &filter, column: "apps.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "apps", table: "apps", filter: filter, query: query,
                                       path: "/v3/apps") { try AppsController(services: services).resource($0) }
    }

    /// Loads a visible app with the actor's roles in its space (404 when not visible).
    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> (PostgresRow, RoleSet) {
        guard let row = try conn.query("SELECT \(columns) FROM apps WHERE guid = $1", [guid]).first else {
            throw APIError.notFound("App")
        }
        let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: try row.decode("space_guid"))
        guard roles.canSeeSpace else { throw APIError.notFound("App") }
        return (row, roles)
    }

    /// Loads an app the actor may change (space developer), 403 if only visible.
    static func loadForWrite(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> PostgresRow {
        let (row, roles) = try load(conn, guid: guid, actor: actor)
        guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
        return row
    }

    static func spaceAndOrg(_ conn: PostgresConnection, _ row: PostgresRow) throws -> (String, String?) {
        let space = try row.decode("space_guid", as: String.self)
        let org = try conn.query("SELECT organization_guid FROM spaces WHERE guid = $1", [space]).first?.decode("organization_guid", as: String.self)
        return (space, org)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "App")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor).0 }
        return try JSONResponse.make(try resource(row))
    }

    /// Environment variable names: POSIX-like, and never the platform's own (`PORT`, `VCAP_*`, `CF_INSTANCE_*`).
    static func validateEnvironment(_ env: [String: String?], maxBytes: Int) throws {
        var total = 0
        for (name, value) in env {
            guard !name.isEmpty, name.count <= 255, let first = name.first, first == "_" || (first.isASCII && first.isLetter),
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
            else { throw APIError.unprocessable("Environment variable name '\(name.prefix(64))' is invalid: use letters, digits and _, not starting with a digit") }
            let upper = name.uppercased()
            if upper == "PORT" || upper.hasPrefix("VCAP_") || upper.hasPrefix("CF_INSTANCE_") || upper == "MEMORY_LIMIT" {
                throw APIError.unprocessable("Environment variable name '\(name)' is reserved by the platform")
            }
            if let value, value.contains("\0") { throw APIError.unprocessable("Environment variable '\(name)' contains a NUL byte") }
            total += name.utf8.count + (value?.utf8.count ?? 0)
        }
        if total > maxBytes {
            throw APIError.unprocessable("Environment variables are too large (\(total) bytes; the limit is \(maxBytes))")
        }
    }

    /// The lifecycle's shape; each buildpack is checked against the admin buildpacks and the git
    /// URL policy in the transaction (`BuildpackSelection.validate`).
    static func validateLifecycle(_ lifecycle: Lifecycle?) throws {
        guard let lifecycle else { return }
        guard lifecycle.type == "buildpack" else { throw APIError.unprocessable("Lifecycle type must be 'buildpack'") }
        for bp in lifecycle.data.buildpacks ?? [] {
            guard !bp.isEmpty, bp.count <= 4096, !bp.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) || $0 == " " })
            else { throw APIError.unprocessable("Buildpack '\(bp.prefix(64))' must be a name or URL without spaces or control characters") }
        }
        if let stack = lifecycle.data.stack { try Validate.name(stack, field: "stack") }
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(
            CreateAppRequest.self, from: request, allowedKeys: ["name", "relationships", "environment_variables", "lifecycle", "metadata"])
        try Validate.name(body.name)
        let space = try Validate.relationshipGuid(body.relationships.space, "space")
        let env = body.environmentVariables ?? [:]
        try Self.validateEnvironment(env.mapValues { Optional($0) }, maxBytes: services.config.maxEnvironmentBytes)
        try Self.validateLifecycle(body.lifecycle)
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let config = services.config
        let box = BuildpackSelection.box(config)
        let policy = config.gitURLPolicy
        let row = try await services.db.write { conn in
            guard let spaceRow = try conn.query("SELECT organization_guid FROM spaces WHERE guid = $1", [space]).first else {
                throw APIError.unprocessable("Invalid space. Ensure that the space exists and you have access to it.")
            }
            let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: space)
            guard roles.canSeeSpace else {
                throw APIError.unprocessable("Invalid space. Ensure that the space exists and you have access to it.")
            }
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            if let stack = body.lifecycle?.data.stack,
               try conn.query("SELECT 1 FROM stacks WHERE name = $1", [stack]).first == nil {
                throw APIError.unprocessable("Stack '\(stack)' does not exist")
            }
            let buildpacks = try body.lifecycle?.data.buildpacks.map { try BuildpackSelection.validate(conn, $0, box: box, policy: policy) }
            let guid = Rows.newGuid()
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    """
                    INSERT INTO apps(guid, name, space_guid, buildpacks, buildpacks_sealed, stack, environment_variables, labels, annotations)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING \(Self.columns)
                    """,
                    [guid, body.name, space, buildpacks?.display ?? [], buildpacks?.sealed,
                     body.lifecycle?.data.stack ?? config.defaultStack,
                     Rows.json(env), Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("App with the name '\(body.name)' already exists.")
            }
            try ProcessesController.createWeb(conn, appGuid: guid, config: config)
            try AuditLog.record(conn, "audit.app.create", actor: actor, target: .init(guid: guid, type: "app", name: body.name),
                                spaceGuid: space, organizationGuid: try spaceRow.decode("organization_guid"),
                                data: ["request": .object(["name": .string(body.name)])])
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func update(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "App")
        let body = try await services.body.decode(UpdateAppRequest.self, from: request, allowedKeys: ["name", "lifecycle", "metadata"])
        if let name = body.name { try Validate.name(name) }
        try Self.validateLifecycle(body.lifecycle)
        let box = BuildpackSelection.box(services.config)
        let policy = services.config.gitURLPolicy
        let row = try await services.db.write { conn in
            let row = try Self.loadForWrite(conn, guid: guid, actor: actor)
            let metadata = try Labels.merge(try Rows.metadata(row), body.metadata)
            if let stack = body.lifecycle?.data.stack,
               try conn.query("SELECT 1 FROM stacks WHERE name = $1", [stack]).first == nil {
                throw APIError.unprocessable("Stack '\(stack)' does not exist")
            }
            let buildpacks = try body.lifecycle?.data.buildpacks.map { try BuildpackSelection.validate(conn, $0, box: box, policy: policy) }
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    """
                    UPDATE apps SET name = coalesce($2, name), buildpacks = coalesce($3, buildpacks), stack = coalesce($4, stack),
                      buildpacks_sealed = CASE WHEN $3::text[] IS NULL THEN buildpacks_sealed ELSE $7 END,
                      labels = $5, annotations = $6, updated_at = now()
                    WHERE guid = $1 RETURNING \(Self.columns)
                    """,
                    [guid, body.name, buildpacks?.display, body.lifecycle?.data.stack,
                     Rows.json(metadata.labels), Rows.json(metadata.annotations), buildpacks?.sealed])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("App with the name '\(body.name ?? "")' already exists.")
            }
            let (space, org) = try Self.spaceAndOrg(conn, row)
            try AuditLog.record(conn, "audit.app.update", actor: actor,
                                target: .init(guid: guid, type: "app", name: try rows.rows[0].decode("name")),
                                spaceGuid: space, organizationGuid: org)
            if body.name != nil { try Self.bumpRoutes(conn) }
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row))
    }

    static func bumpRoutes(_ conn: PostgresConnection) throws {
        try conn.query("UPDATE platform_versions SET version = version + 1 WHERE name = 'routes'")
        try conn.query("SELECT pg_notify('cflike_routes', '')")
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "App")
        let job = try await services.db.write { conn in
            let row = try Self.loadForWrite(conn, guid: guid, actor: actor)
            let (space, org) = try Self.spaceAndOrg(conn, row)
            try Placement.release(conn, app: guid)
            try conn.query("DELETE FROM apps WHERE guid = $1", [guid])
            try Self.bumpRoutes(conn)
            try AuditLog.record(conn, "audit.app.delete-request", actor: actor,
                                target: .init(guid: guid, type: "app", name: try row.decode("name")), spaceGuid: space, organizationGuid: org)
            return try Services.completedJob(conn, operation: "app.delete", actor: actor)
        }
        return services.accepted(job: job)
    }

    private func setState(_ request: Request, _ context: ControllerContext, state: String, event: String) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "App")
        let cfAPI = services.config.externalURL
        let row = try await services.db.write { conn in
            let row = try Self.loadForWrite(conn, guid: guid, actor: actor)
            if state == "STARTED", try row.decode("droplet_guid", as: String?.self) == nil {
                throw APIError.unprocessable("Assign a droplet before starting this app.")
            }
            let rows = try conn.query(
                "UPDATE apps SET state = $2, updated_at = now() WHERE guid = $1 RETURNING \(Self.columns)", [guid, state])
            try conn.query("UPDATE processes SET version = $2, updated_at = now() WHERE app_guid = $1", [guid, Rows.newGuid()])
            try Placement.converge(conn, apps: [guid], cfAPI: cfAPI)
            let (space, org) = try Self.spaceAndOrg(conn, row)
            try AuditLog.record(conn, event, actor: actor, target: .init(guid: guid, type: "app", name: try row.decode("name")),
                                spaceGuid: space, organizationGuid: org)
            try Self.bumpRoutes(conn)
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func start(_ request: Request, context: ControllerContext) async throws -> Response {
        try await setState(request, context, state: "STARTED", event: "audit.app.start")
    }

    @Sendable func stop(_ request: Request, context: ControllerContext) async throws -> Response {
        try await setState(request, context, state: "STOPPED", event: "audit.app.stop")
    }

    @Sendable func restart(_ request: Request, context: ControllerContext) async throws -> Response {
        try await setState(request, context, state: "STARTED", event: "audit.app.restart")
    }

    /// Only space developers read env vars (F3: auditors and managers may not see secrets).
    @Sendable func getEnvironment(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "App")
        let env = try await services.db.read { conn in
            _ = try Self.loadForWrite(conn, guid: guid, actor: actor)
            return try Rows.stringMap(try conn.query("SELECT environment_variables FROM apps WHERE guid = $1", [guid]).rows[0],
                                      "environment_variables")
        }
        return try JSONResponse.make(EnvironmentVariablesResource(
            var: env, links: ["self": services.link("/v3/apps/\(guid)/environment_variables"), "app": services.link("/v3/apps/\(guid)")]))
    }

    @Sendable func patchEnvironment(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "App")
        let body = try await services.body.decode(EnvironmentVariablesPatch.self, from: request, allowedKeys: ["var"])
        try Self.validateEnvironment(body.var, maxBytes: services.config.maxEnvironmentBytes)
        let maxBytes = services.config.maxEnvironmentBytes
        let env = try await services.db.write { conn in
            let row = try Self.loadForWrite(conn, guid: guid, actor: actor)
            var env = try Rows.stringMap(try conn.query("SELECT environment_variables FROM apps WHERE guid = $1", [guid]).rows[0],
                                         "environment_variables")
            for (name, value) in body.var { env[name] = value }
            try Self.validateEnvironment(env.mapValues { Optional($0) }, maxBytes: maxBytes)
            try conn.query("UPDATE apps SET environment_variables = $2, updated_at = now() WHERE guid = $1", [guid, Rows.json(env)])
            let (space, org) = try Self.spaceAndOrg(conn, row)
            // Names only: values may be secrets and never reach the audit log.
            try AuditLog.record(conn, "audit.app.update", actor: actor, target: .init(guid: guid, type: "app", name: try row.decode("name")),
                                spaceGuid: space, organizationGuid: org,
                                data: ["request": .object(["environment_variables": .strings(body.var.keys.sorted())])])
            return env
        }
        return try JSONResponse.make(EnvironmentVariablesResource(
            var: env, links: ["self": services.link("/v3/apps/\(guid)/environment_variables"), "app": services.link("/v3/apps/\(guid)")]))
    }
}
