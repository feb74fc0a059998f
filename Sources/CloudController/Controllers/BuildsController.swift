import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/builds`: staging a READY package into a droplet, and the app's buildpack cache.
///
/// Creating a build resolves its buildpacks at once (BuildpackSelection), stores them sealed,
/// queues the build (STAGING, unclaimed) and wakes the stagers' polls (`NOTIFY cflike_staging`);
/// a stager claims it through the internal staging API (StagingController), which turns it
/// STAGED with a droplet or FAILED with CF's `<error name> - <message>`. With no buildpack named
/// and no admin buildpack enabled for the stack, the build is created FAILED right away with
/// `NoAppDetectedError`, as staging would end anyway, so clients see the same outcome either way.
struct BuildsController {
    let services: Services
    static let columns = """
        builds.guid, builds.app_guid, builds.package_guid, builds.state, builds.error, builds.lifecycle_type,
        builds.buildpacks, builds.stack, builds.staging_memory_in_mb, builds.staging_disk_in_mb, builds.droplet_guid,
        builds.created_by_guid, builds.created_by_name, builds.labels, builds.annotations, builds.created_at, builds.updated_at
        """

    static let noAppDetected = "NoAppDetectedError - An app was not successfully detected by any available buildpack"

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("builds", use: list)
        group.post("builds", use: create)
        group.get("builds/:guid", use: get)
        group.get("apps/:guid/builds", use: listForApp)
        group.post("apps/:guid/actions/clear_buildpack_cache", use: clearBuildpackCache)
    }

    func resource(_ row: PostgresRow) throws -> BuildResource {
        let guid = try row.decode("guid", as: String.self)
        let app = try row.decode("app_guid", as: String.self)
        let droplet = try row.decode("droplet_guid", as: String?.self)
        var links = ["self": services.link("/v3/builds/\(guid)"), "app": services.link("/v3/apps/\(app)")]
        if let droplet { links["droplet"] = services.link("/v3/droplets/\(droplet)") }
        return BuildResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            state: try row.decode("state"), error: try row.decode("error", as: String?.self),
            lifecycle: Lifecycle(type: try row.decode("lifecycle_type"),
                                 data: .init(buildpacks: try row.decode("buildpacks", as: [String].self), stack: try row.decode("stack"))),
            packageGuid: try row.decode("package_guid"), dropletGuid: droplet,
            stagingMemoryInMB: try row.decode("staging_memory_in_mb"), stagingDiskInMB: try row.decode("staging_disk_in_mb"),
            createdBy: .init(guid: try row.decode("created_by_guid"), name: try row.decode("created_by_name")),
            relationships: ["app": ToOneRelationship(guid: app)], metadata: try Rows.metadata(row), links: links)
    }

    private func listResponse(_ request: Request, actor: Actor, app: String?, path: String) async throws -> Response {
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query),
                                  filters: ["guids", "states", "app_guids", "package_guids"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at"])
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("apps.space_guid IN (\(Visibility.spaces(filter.bind(actor.userGuid))))") }
        if let app { filter.add("builds.app_guid = \(filter.bind(app))") }
        if let guids = try query.guids("guids") { filter.add("builds.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let states = try query.parameters.list("states") { filter.add("builds.state = ANY(\(filter.bind(states))::text[])") }
        if let apps = try query.guids("app_guids") { filter.add("builds.app_guid = ANY(\(filter.bind(apps))::uuid[])") }
        if let packages = try query.guids("package_guids") { filter.add("builds.package_guid = ANY(\(filter.bind(packages))::uuid[])") }
        query.applyLabels(to: &filter, column: "builds.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "builds JOIN apps ON apps.guid = builds.app_guid",
                                       table: "builds", filter: filter, query: query, path: path) {
            try BuildsController(services: services).resource($0)
        }
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        try await listResponse(request, actor: try context.requireActor(), app: nil, path: "/v3/builds")
    }

    @Sendable func listForApp(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        _ = try await services.db.read { conn in try AppsController.load(conn, guid: app, actor: actor).0["guid"] }
        return try await listResponse(request, actor: actor, app: app, path: "/v3/apps/\(app)/builds")
    }

    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> (PostgresRow, RoleSet) {
        guard let row = try conn.query(
            "SELECT \(columns), apps.space_guid FROM builds JOIN apps ON apps.guid = builds.app_guid WHERE builds.guid = $1",
            [guid]).first
        else { throw APIError.notFound("Build") }
        let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: try row.decode("space_guid"))
        guard roles.canSeeSpace else { throw APIError.notFound("Build") }
        return (row, roles)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Build")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor).0 }
        return try JSONResponse.make(try resource(row))
    }

    // MARK: Create

    static let unusablePackage = "Unable to use package. Ensure that the package exists and you have access to it."

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(
            CreateBuildRequest.self, from: request,
            allowedKeys: ["package", "lifecycle", "staging_memory_in_mb", "staging_disk_in_mb",
                          "staging_log_rate_limit_bytes_per_second", "metadata"])
        guard Rows.isGuid(body.package.guid) else { throw APIError.unprocessable(Self.unusablePackage) }
        let package = body.package.guid.lowercased()
        let config = services.config
        if let memory = body.stagingMemoryInMB, !(1...config.maxMemoryMB).contains(memory) {
            throw APIError.unprocessable("Staging memory in mb must be between 1 and \(config.maxMemoryMB)")
        }
        if let disk = body.stagingDiskInMB, !(1...config.maxDiskMB).contains(disk) {
            throw APIError.unprocessable("Staging disk in mb must be between 1 and \(config.maxDiskMB)")
        }
        if let rate = body.stagingLogRateLimitBytesPerSecond, rate < -1 {
            throw APIError.unprocessable("Staging log rate limit bytes per second must be -1 (unlimited) or more")
        }
        try AppsController.validateLifecycle(body.lifecycle)
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let box = BuildpackSelection.box(config)
        let policy = config.gitURLPolicy
        let row = try await services.db.write { conn in
            guard let source = try conn.query(
                """
                SELECT p.state, p.app_guid, a.name, a.space_guid, s.organization_guid, a.stack, a.buildpacks, a.buildpacks_sealed
                FROM packages p JOIN apps a ON a.guid = p.app_guid JOIN spaces s ON s.guid = a.space_guid WHERE p.guid = $1
                """, [package]).first
            else { throw APIError.unprocessable(Self.unusablePackage) }
            let space = try source.decode("space_guid", as: String.self)
            let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: space)
            guard roles.canSeeSpace else { throw APIError.unprocessable(Self.unusablePackage) }
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let state = try source.decode("state", as: String.self)
            guard state == "READY" else {
                throw APIError.unprocessable("The package is \(state): only a READY package (bits uploaded) can be staged")
            }
            let app = try source.decode("app_guid", as: String.self)
            let appName = try source.decode("name", as: String.self)
            if let stack = body.lifecycle?.data.stack,
               try conn.query("SELECT 1 FROM stacks WHERE name = $1", [stack]).first == nil {
                throw APIError.unprocessable("Stack '\(stack)' does not exist")
            }
            let stack = try body.lifecycle?.data.stack ?? source.decode("stack", as: String?.self) ?? config.defaultStack
            let named = try body.lifecycle?.data.buildpacks ?? BuildpackSelection.appEntries(source, box: box)
            let resolution = try BuildpackSelection.resolve(conn, named: named, stack: stack, box: box, policy: policy)
            let sealed = try box.seal(String(decoding: try JSONEncoder().encode(resolution.buildpacks), as: UTF8.self))
            let error = resolution.buildpacks.isEmpty
                ? "\(Self.noAppDetected) (no buildpack was named and no admin buildpack is enabled for stack '\(stack)')" : nil
            let guid = Rows.newGuid()
            try conn.query(
                """
                INSERT INTO builds(guid, app_guid, package_guid, state, error, buildpacks, stack, staging_buildpacks_sealed, detect,
                  staging_memory_in_mb, staging_disk_in_mb, timeout_seconds, created_by_guid, created_by_name, labels, annotations)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                """,
                [guid, app, package, error == nil ? "STAGING" : "FAILED", error, resolution.display, stack, sealed,
                 resolution.detect, body.stagingMemoryInMB ?? config.stagingMemoryMB, body.stagingDiskInMB ?? config.stagingDiskMB,
                 config.stagingTimeoutSeconds, actor.userGuid, actor.username,
                 Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            try AuditLog.record(conn, "audit.app.build.create", actor: actor, target: .init(guid: app, type: "app", name: appName),
                                spaceGuid: space, organizationGuid: try source.decode("organization_guid"),
                                data: ["build_guid": .string(guid), "package_guid": .string(package),
                                       "buildpacks": .strings(resolution.display)])
            if let error {
                try AppLogStore.append(conn, [StagingController.line(app: app, error: true, error)], keep: config.appLogLines)
            } else {
                try conn.query("SELECT pg_notify($1, $2)", [StagingProtocol.stagingChannel, guid])
            }
            return try Self.load(conn, guid: guid, actor: actor).0
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    // MARK: Buildpack cache

    /// Forgets the app's buildpack cache: the next build starts without one (the janitor then
    /// removes the blob). Answers 202 with a completed job, as CF does.
    @Sendable func clearBuildpackCache(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        let job = try await services.db.write { conn in
            let row = try AppsController.loadForWrite(conn, guid: app, actor: actor)
            try conn.query(
                "UPDATE apps SET buildpack_cache_sha256 = NULL, buildpack_cache_size_bytes = NULL, updated_at = now() WHERE guid = $1",
                [app])
            let (space, org) = try AppsController.spaceAndOrg(conn, row)
            try AuditLog.record(conn, "audit.app.buildpack_cache.delete", actor: actor,
                                target: .init(guid: app, type: "app", name: try row.decode("name")), spaceGuid: space, organizationGuid: org)
            return try Services.completedJob(conn, operation: "app.clear_buildpack_cache", actor: actor)
        }
        return services.accepted(job: job)
    }
}
