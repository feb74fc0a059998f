import Foundation
import GitFetch
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/buildpacks`: admin-registered buildpacks, each backed by a git URL (`URL`, `URL#branch`,
/// `URL#tag` or `URL#commit`). Everyone may list them (clients name them in `lifecycle`); only
/// admins change them. Credentials inside URLs are sealed at rest and never shown.
struct BuildpacksController {
    let services: Services
    static let columns = """
        buildpacks.guid, buildpacks.name, buildpacks.position, buildpacks.enabled, buildpacks.locked, buildpacks.stack,
        buildpacks.url_display, buildpacks.labels, buildpacks.annotations, buildpacks.created_at, buildpacks.updated_at
        """

    var box: SecretBox { SecretBox(secret: services.config.tokenSigningKey, purpose: "buildpack url") }

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("buildpacks", use: list)
        group.post("buildpacks", use: create)
        group.get("buildpacks/:guid", use: get)
        group.patch("buildpacks/:guid", use: update)
        group.delete("buildpacks/:guid", use: delete)
    }

    func resource(_ row: PostgresRow) throws -> BuildpackResource {
        let guid = try row.decode("guid", as: String.self)
        return BuildpackResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            name: try row.decode("name"), stack: try row.decode("stack", as: String?.self), position: try row.decode("position"),
            enabled: try row.decode("enabled"), locked: try row.decode("locked"), url: try row.decode("url_display"),
            metadata: try Rows.metadata(row), links: ["self": services.link("/v3/buildpacks/\(guid)")])
    }

    /// Admin sources are trusted (local repositories allowed); the scheme policy still applies.
    static func validateURL(_ text: String) throws -> GitSource {
        guard !text.isEmpty, text.utf8.count <= 4096, !text.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) })
        else { throw APIError.unprocessable("Url must be a git URL of at most 4096 characters") }
        let source: GitSource
        do {
            source = try GitSource(parsing: text, trusted: true)
            try GitURLPolicy.default.check(source)
        } catch let error as GitError {
            throw APIError.unprocessable("Url is not an acceptable git source: \(error.message)")
        }
        return source
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        _ = try context.requireActor()
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["names", "stacks"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at", "position": "position"],
                                  defaultOrder: "position")
        var filter = SQLFilter()
        if let names = try query.parameters.list("names") { filter.add("buildpacks.name = ANY(\(filter.bind(names))::text[])") }
        if let stacks = try query.parameters.list("stacks") { filter.add("buildpacks.stack = ANY(\(filter.bind(stacks))::text[])") }
        query.applyLabels(to: &filter, column: "buildpacks.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "buildpacks", table: "buildpacks", filter: filter, query: query,
                                       path: "/v3/buildpacks") { try BuildpacksController(services: services).resource($0) }
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        _ = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Buildpack")
        let row = try await services.db.read { conn in try conn.query("SELECT \(Self.columns) FROM buildpacks WHERE guid = $1", [guid]).first }
        guard let row else { throw APIError.notFound("Buildpack") }
        return try JSONResponse.make(try resource(row))
    }

    /// Moves `guid` to `position` (clamped to 1...count), shifting the others; positions stay 1...n without gaps.
    static func place(_ conn: PostgresConnection, guid: String, position: Int?) throws {
        let rows = try conn.query("SELECT guid FROM buildpacks ORDER BY position, id")
        var order = try rows.map { try $0.decode("guid", as: String.self) }.filter { $0 != guid }
        let target = min(max(position ?? (order.count + 1), 1), order.count + 1)
        order.insert(guid, at: target - 1)
        try conn.query("UPDATE buildpacks b SET position = o.n FROM unnest($1::uuid[]) WITH ORDINALITY AS o(g, n) WHERE b.guid = o.g", [order])
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(BuildpackRequest.self, from: request,
                                                  allowedKeys: ["name", "url", "position", "enabled", "locked", "stack", "metadata"])
        guard actor.isAdmin else { throw APIError.notAuthorized() }
        guard let name = body.name else { throw APIError.unprocessable("Name can't be blank") }
        try Validate.name(name, max: 250)
        guard let url = body.url else { throw APIError.unprocessable("Url can't be blank: give the buildpack's git URL") }
        let source = try Self.validateURL(url)
        if let position = body.position, position < 1 { throw APIError.unprocessable("Position must be greater than or equal to 1") }
        let sealed = try box.seal(url)
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let row = try await services.db.write { conn in
            try conn.query("LOCK TABLE buildpacks IN SHARE ROW EXCLUSIVE MODE")
            let guid = Rows.newGuid()
            do {
                try conn.query(
                    """
                    INSERT INTO buildpacks(guid, name, position, enabled, locked, stack, url_display, url_sealed, labels, annotations)
                    VALUES ($1, $2, 2147483647, $3, $4, $5, $6, $7, $8, $9)
                    """,
                    [guid, name, body.enabled ?? true, body.locked ?? false, body.stack, source.description, sealed,
                     Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("Buildpack with name '\(name)' already exists")
            }
            try Self.place(conn, guid: guid, position: body.position)
            try AuditLog.record(conn, "audit.buildpack.create", actor: actor, target: .init(guid: guid, type: "buildpack", name: name),
                                data: ["url": .string(source.description)])
            return try conn.query("SELECT \(Self.columns) FROM buildpacks WHERE guid = $1", [guid]).rows[0]
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func update(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Buildpack")
        let body = try await services.body.decode(BuildpackRequest.self, from: request,
                                                  allowedKeys: ["name", "url", "position", "enabled", "locked", "stack", "metadata"])
        guard actor.isAdmin else { throw APIError.notAuthorized() }
        if let name = body.name { try Validate.name(name, max: 250) }
        if let position = body.position, position < 1 { throw APIError.unprocessable("Position must be greater than or equal to 1") }
        let source = try body.url.map(Self.validateURL)
        let sealed = try body.url.map(box.seal)
        let row = try await services.db.write { conn in
            try conn.query("LOCK TABLE buildpacks IN SHARE ROW EXCLUSIVE MODE")
            guard let row = try conn.query("SELECT \(Self.columns) FROM buildpacks WHERE guid = $1", [guid]).first else {
                throw APIError.notFound("Buildpack")
            }
            let locked = try row.decode("locked", as: Bool.self)
            if locked, body.locked != false, body.url != nil {
                throw APIError.unprocessable("The buildpack is locked: unlock it before changing its URL")
            }
            let metadata = try Labels.merge(try Rows.metadata(row), body.metadata)
            do {
                try conn.query(
                    """
                    UPDATE buildpacks SET name = coalesce($2, name), enabled = coalesce($3, enabled), locked = coalesce($4, locked),
                      stack = coalesce($5, stack), url_display = coalesce($6, url_display), url_sealed = coalesce($7, url_sealed),
                      labels = $8, annotations = $9, updated_at = now()
                    WHERE guid = $1
                    """,
                    [guid, body.name, body.enabled, body.locked, body.stack, source?.description, sealed,
                     Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("Buildpack with name '\(body.name ?? "")' already exists")
            }
            if let position = body.position { try Self.place(conn, guid: guid, position: position) }
            try AuditLog.record(conn, "audit.buildpack.update", actor: actor,
                                target: .init(guid: guid, type: "buildpack", name: try row.decode("name")))
            return try conn.query("SELECT \(Self.columns) FROM buildpacks WHERE guid = $1", [guid]).rows[0]
        }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Buildpack")
        guard actor.isAdmin else { throw APIError.notAuthorized() }
        let job = try await services.db.write { conn in
            try conn.query("LOCK TABLE buildpacks IN SHARE ROW EXCLUSIVE MODE")
            guard let row = try conn.query("DELETE FROM buildpacks WHERE guid = $1 RETURNING name", [guid]).first else {
                throw APIError.notFound("Buildpack")
            }
            try conn.query("""
                UPDATE buildpacks b SET position = o.n
                FROM (SELECT guid, row_number() OVER (ORDER BY position, id) AS n FROM buildpacks) o WHERE b.guid = o.guid
                """)
            try AuditLog.record(conn, "audit.buildpack.delete", actor: actor,
                                target: .init(guid: guid, type: "buildpack", name: try row.decode("name")))
            return try Services.completedJob(conn, operation: "buildpack.delete", actor: actor)
        }
        return services.accepted(job: job)
    }
}
