import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/users`. The CC keeps usernames and password hashes itself (no separate UAA), so
/// creating a user takes a username and password (admin only). An admin sets anyone's password;
/// a user changes their own with `old_password`; either way their older tokens stop working.
struct UsersController {
    let services: Services
    static let columns = "users.guid, users.username, users.origin, users.labels, users.annotations, users.created_at, users.updated_at"

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("users", use: list)
        group.post("users", use: create)
        group.get("users/:guid", use: get)
        group.patch("users/:guid", use: update)
        group.delete("users/:guid", use: delete)
    }

    func resource(_ row: PostgresRow) throws -> UserResource {
        let guid = try row.decode("guid", as: String.self)
        return UserResource(guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
                            username: try row.decode("username"), origin: try row.decode("origin"),
                            metadata: try Rows.metadata(row), links: ["self": services.link("/v3/users/\(guid)")])
    }

    /// Users the actor may see: themselves and anyone holding a role in an organization they see.
    static func visible(_ user: String) -> String {
        """
        SELECT \(user)::uuid
        UNION SELECT r.user_guid FROM roles r WHERE r.organization_guid IN (\(Visibility.organizations(user)))
        UNION SELECT r.user_guid FROM roles r JOIN spaces s ON s.guid = r.space_guid
          WHERE s.organization_guid IN (\(Visibility.organizations(user)))
        """
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["guids", "usernames", "origins"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at", "username": "username"])
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("users.guid IN (\(Self.visible(filter.bind(actor.userGuid))))") }
        if let guids = try query.guids("guids") { filter.add("users.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let names = try query.parameters.list("usernames") { filter.add("users.username = ANY(\(filter.bind(names))::text[])") }
        if let origins = try query.parameters.list("origins") { filter.add("users.origin = ANY(\(filter.bind(origins))::text[])") }
        query.applyLabels(to: &filter, column: "users.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "users", table: "users", filter: filter, query: query,
                                       path: "/v3/users") { try UsersController(services: services).resource($0) }
    }

    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> PostgresRow {
        var filter = SQLFilter(parameters: [guid])
        if !actor.isAdmin { filter.add("users.guid IN (\(visible(filter.bind(actor.userGuid))))") }
        filter.add("users.guid = $1")
        guard let row = try conn.query("SELECT \(columns) FROM users \(filter.whereSQL)", filter.parameters).first else {
            throw APIError.notFound("User")
        }
        return row
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "User")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor) }
        return try JSONResponse.make(try resource(row))
    }

    static func validateUsername(_ name: String) throws {
        guard (1...255).contains(name.count),
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._@+-".contains($0)) })
        else {
            throw APIError.unprocessable("Username must be 1 to 255 characters of letters, digits and . _ @ + -")
        }
    }

    static func validatePassword(_ password: String) throws {
        guard password.count >= 8 else { throw APIError.unprocessable("Password must be at least 8 characters") }
        guard password.utf8.count <= 1024 else { throw APIError.unprocessable("Password is too long (maximum is 1024 bytes)") }
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreateUserRequest.self, from: request,
                                                  allowedKeys: ["username", "password", "admin", "metadata"])
        guard actor.isAdmin else { throw APIError.notAuthorized() }
        try Self.validateUsername(body.username)
        try Self.validatePassword(body.password)
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let hasher = services.tokens.hasher
        let hash = try await services.threadPool.runIfActive { try hasher.hash(body.password) }
        let row = try await services.db.write { conn in
            let guid = Rows.newGuid()
            let rows: PostgresResult
            do {
                rows = try conn.query(
                    """
                    INSERT INTO users(guid, username, password_hash, admin, labels, annotations) VALUES ($1, $2, $3, $4, $5, $6)
                    RETURNING \(Self.columns)
                    """, [guid, body.username, hash, body.admin ?? false, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("User '\(body.username)' already exists.")
            }
            try AuditLog.record(conn, "audit.user.create", actor: actor, target: .init(guid: guid, type: "user", name: body.username))
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func update(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "User")
        let body = try await services.body.decode(UpdateUserRequest.self, from: request,
                                                  allowedKeys: ["password", "old_password", "metadata"])
        if body.oldPassword != nil, body.password == nil { throw APIError.unprocessable("old_password is only accepted with password") }
        if let password = body.password {
            try Self.validatePassword(password)
            try await checkOldPassword(guid: guid, actor: actor, new: password, old: body.oldPassword, metadata: body.metadata != nil)
        }
        var hash: String?
        if let password = body.password {
            let hasher = services.tokens.hasher
            hash = try await services.threadPool.runIfActive { try hasher.hash(password) }
        }
        let newHash = hash
        let row = try await services.db.write { conn in
            let row = try Self.load(conn, guid: guid, actor: actor)
            guard actor.isAdmin || (actor.userGuid == guid && body.metadata == nil) else { throw APIError.notAuthorized() }
            let metadata = try Labels.merge(try Rows.metadata(row), body.metadata)
            let rows = try conn.query(
                """
                UPDATE users SET password_hash = coalesce($2, password_hash), labels = $3, annotations = $4, updated_at = now(),
                  tokens_valid_after = CASE WHEN $2::text IS NULL THEN tokens_valid_after ELSE date_trunc('second', now()) END
                WHERE guid = $1 RETURNING \(Self.columns)
                """, [guid, newHash, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            if newHash != nil {
                try conn.query("UPDATE refresh_tokens SET revoked_at = now() WHERE user_guid = $1 AND revoked_at IS NULL", [guid])
            }
            try AuditLog.record(conn, "audit.user.update", actor: actor,
                                target: .init(guid: guid, type: "user", name: try row.decode("username")),
                                data: ["password_changed": .bool(newHash != nil)])
            return rows.rows[0]
        }
        return try JSONResponse.make(try resource(row))
    }

    /// As UAA: a user changing their own password proves the current one (`old_password`); an
    /// admin sets anyone's without it, but one that is sent is checked all the same. The checks
    /// (visibility 404, then 403) come before the old password is looked at.
    func checkOldPassword(guid: String, actor: Actor, new password: String, old: String?, metadata: Bool) async throws {
        let stored = try await services.db.read { conn in
            _ = try Self.load(conn, guid: guid, actor: actor)
            guard actor.isAdmin || (actor.userGuid == guid && !metadata) else { throw APIError.notAuthorized() }
            return try conn.query("SELECT password_hash FROM users WHERE guid = $1", [guid]).first?.decode("password_hash", as: String.self)
        }
        guard let old else {
            if actor.isAdmin { return }
            throw APIError.unprocessable("Changing your own password needs old_password, your current password")
        }
        let hasher = services.tokens.hasher
        let matches = try await services.threadPool.runIfActive { stored.map { hasher.verify(old, against: $0) } ?? false }
        guard matches else { throw APIError.unprocessable("Old password is incorrect") }
        guard old != password else { throw APIError.unprocessable("Your new password cannot be the same as the old password") }
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "User")
        let job = try await services.db.write { conn in
            let row = try Self.load(conn, guid: guid, actor: actor)
            guard actor.isAdmin else { throw APIError.notAuthorized() }
            guard guid != actor.userGuid else { throw APIError.unprocessable("You cannot delete your own user") }
            try conn.query("DELETE FROM users WHERE guid = $1", [guid])
            try AuditLog.record(conn, "audit.user.delete-request", actor: actor,
                                target: .init(guid: guid, type: "user", name: try row.decode("username")))
            return try Services.completedJob(conn, operation: "user.delete", actor: actor)
        }
        return services.accepted(job: job)
    }
}
