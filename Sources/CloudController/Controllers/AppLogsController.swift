import Foundation
import Hummingbird
import NIOCore
import PlatformModels
import PostgresStore

/// App logs: agents and stagers ship lines to `POST /internal/v1/logs`; users read them with
/// `GET /v3/apps/:guid/logs?recent[&lines=N][&after=CURSOR]` (an ``AppLogPage``, oldest first)
/// or follow them with `GET /v3/apps/:guid/logs?follow=true[&after=CURSOR]` (NDJSON, one
/// ``LogLine`` per line as lines arrive, an empty line as keep-alive).
///
/// Who may read an app's logs: an admin, anyone with a role in the app's space (developer,
/// manager, auditor, supporter) and the managers of its organization, as in CF. Organization
/// auditors see the app (they audit the org) but not what the app prints, which can carry
/// customer data: 403. Users who cannot see the app at all get 404.
struct AppLogsController {
    let services: Services
    static let maxLinesPerBatch = 1000
    static let maxLinesPerPage = 1000

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("apps/:guid/logs", use: read)
    }

    func registerInternal(_ group: RouterGroup<ControllerContext>) {
        group.post("v1/logs", use: ingest)
    }

    // MARK: Shipping

    /// A line ready to store, or a 422 naming the field that refuses it alone. The message is
    /// cleaned as it is stored (``AppLogStore/append(_:_:keep:)``), never a reason to refuse it.
    static func validate(_ line: LogLine, at i: Int) throws -> LogLine {
        var line = line
        line.appGUID = try AgentsController.checkGuid(line.appGUID, field: "lines[\(i)].app_guid")
        try AgentsController.checkText(line.sourceType, field: "lines[\(i)].source_type", max: 64)
        try AgentsController.checkText(line.sourceInstance, field: "lines[\(i)].source_instance", max: 64, allowEmpty: true)
        return line
    }

    /// `POST /internal/v1/logs`, read line by line (BatchProtocol.swift).
    struct IngestBody: Decodable {
        var lines: [BatchItem<LogLine>]
    }

    @Sendable func ingest(_ request: Request, context: ControllerContext) async throws -> Response {
        let batch = try await JSONBody(maxBytes: services.config.maxInternalBodyBytes)
            .decode(IngestBody.self, from: request, allowedKeys: ["lines"], repairingText: true)
        guard batch.lines.count <= Self.maxLinesPerBatch else {
            throw APIError(status: .contentTooLarge, code: 10011, title: "CF-RequestTooLarge",
                           detail: "A log batch holds at most \(Self.maxLinesPerBatch) lines; this one has \(batch.lines.count)")
        }
        let sorted = try BatchSort(batch.lines) { try Self.validate($0, at: $1) }
        let lines = sorted.items
        let keep = services.config.appLogLines
        _ = try await services.db.write { conn in try AppLogStore.append(conn, lines, keep: keep) }
        sorted.log(services.logger, batch: "log lines")
        return try JSONResponse.make(BatchAnswer(accepted: lines.count, rejected: sorted.rejected))
    }

    // MARK: Reading

    /// May `roles` read the logs of an app in that space (see the type's comment)?
    static func canReadLogs(_ roles: RoleSet) -> Bool {
        roles.isAdmin || !roles.space.isEmpty || roles.organization.contains("organization_manager")
    }

    struct Query {
        var follow: Bool
        var lines: Int
        var after: Int64?
    }

    static func parse(_ request: Request) throws -> Query {
        let query = try QueryParameters(rawQuery: request.uri.query)
        try query.requireOnly(["recent", "follow", "lines", "after"])
        let follow = try query.bool("follow") ?? false
        let recent: Bool
        switch query["recent"] {
        case nil: recent = false
        case "", "true": recent = true
        default: throw APIError.badQuery("recent takes no value (or 'true')")
        }
        guard recent != follow else { throw APIError.badQuery("give either recent or follow=true") }
        let lines = try query.int("lines", range: 1...maxLinesPerPage)
        if follow, lines != nil { throw APIError.badQuery("lines applies to recent only") }
        let after = try query.int("after", range: 0...Int.max).map(Int64.init)
        return Query(follow: follow, lines: lines ?? maxLinesPerPage, after: after)
    }

    /// Checks the actor may read the app's logs (404 when it cannot see the app, 403 when it
    /// sees it but may not read its logs).
    static func authorize(_ conn: PostgresConnection, app: String, actor: Actor) throws {
        let (_, roles) = try AppsController.load(conn, guid: app, actor: actor)
        guard canReadLogs(roles) else { throw APIError.notAuthorized() }
    }

    @Sendable func read(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        let query = try Self.parse(request)
        if query.follow { return try await follow(app: app, actor: actor, after: query.after) }
        let page = try await services.db.read { conn -> AppLogPage in
            try Self.authorize(conn, app: app, actor: actor)
            let stored = try query.after.map { try AppLogStore.after(conn, app: app, cursor: $0, limit: query.lines) }
                ?? AppLogStore.newest(conn, app: app, limit: query.lines)
            let cursor = try stored.last?.id ?? query.after ?? AppLogStore.end(conn, app: app)
            return AppLogPage(lines: stored.map(\.line), nextCursor: cursor)
        }
        return try JSONResponse.make(page)
    }

    /// Streams lines as they arrive, starting after `after` (or at the end of the log) until
    /// the client hangs up, the app goes out of reach or the controller shuts down.
    private func follow(app: String, actor: Actor, after: Int64?) async throws -> Response {
        let db = services.db
        // Authorise (and find the starting cursor) before the 200 goes out.
        let start = try await db.read { conn -> Int64 in
            try Self.authorize(conn, app: app, actor: actor)
            return try after ?? AppLogStore.end(conn, app: app)
        }
        let feed = services.feed
        let keepalive = Duration.seconds(services.config.logStreamKeepaliveSeconds)
        let body = ResponseBody { writer in
            let subscription = try await feed.subscribe(channel: AgentProtocol.logsChannel, payload: app)
            var cursor = start
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            streaming: while true {
                let from = cursor
                let batch = try await db.read { conn in try AppLogStore.after(conn, app: app, cursor: from, limit: Self.maxLinesPerPage) }
                if !batch.isEmpty {
                    var buffer = ByteBuffer()
                    for stored in batch {
                        buffer.writeBytes(try encoder.encode(stored.line))
                        buffer.writeString("\n")
                    }
                    try await writer.write(buffer)
                    cursor = batch[batch.count - 1].id
                    if batch.count == Self.maxLinesPerPage { continue }  // more waiting: read on before sleeping
                }
                switch await subscription.wait(timeout: keepalive) {
                case .notified:
                    continue
                case .stopped:
                    break streaming
                case .timedOut:
                    // A hung-up client makes this write fail, which ends the stream.
                    try await writer.write(ByteBuffer(string: "\n"))
                    let stillAllowed = (try? await db.read { conn in try Self.authorize(conn, app: app, actor: actor) }) != nil
                    if !stillAllowed { break streaming }
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"], body: body)
    }
}
