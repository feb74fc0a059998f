import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `GET /internal/v1/routes?after=V&wait=S`: the route table routers long-poll (RouteTable.swift).
///
/// Every route with its backends: the RUNNING instances (as reported, with a host port) of each
/// destination's app and process type, of STARTED apps, on active agents. The version is
/// `platform_versions.routes`, read before the table so a table is never older than its version.
///
/// A router names itself and says how fresh its table is with the optional parameters of
/// ``RouterPollReport`` (`router_id`, `table_version`, `table_age_seconds`, `version`,
/// `listen`); each poll that names a router upserts its row in `routers` (one statement, run
/// alongside the table read, before any wait), which `/v3/admin/routers` and the health
/// snapshot read.
struct RouteTableController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("v1/routes", use: table)
    }

    /// Longest `listen` a router may report.
    static let maxListenBytes = 262
    /// Largest `table_age_seconds` (ten years).
    static let maxTableAgeSeconds = 315_360_000

    @Sendable func table(_ request: Request, context: ControllerContext) async throws -> Response {
        let query = try QueryParameters(rawQuery: request.uri.query)
        try query.requireOnly(["after", "wait", "router_id", "table_version", "table_age_seconds", "version", "listen"])
        let after = try query.int("after", range: 0...Int.max)
        let wait = try query.int("wait", range: 0...AgentsController.maxWaitSeconds) ?? 30
        let report = try Self.report(query)
        let subscription = try await services.feed.subscribe(channel: RouteTableFeed.channel)
        // Recorded alongside the read, before any wait: the answer waits for neither.
        async let recorded: Void = record(report, parkSeconds: after == nil ? 0 : wait)
        var table = try await services.db.read { conn in try Self.read(conn) }
        await recorded
        if wait > 0, let after, table.version == after {
            if await subscription.wait(timeout: .seconds(wait)) != .timedOut {
                table = try await services.db.read { conn in try Self.read(conn) }
            }
        }
        return try JSONResponse.make(table)
    }

    /// The router a poll describes, validated; nil when it names none.
    static func report(_ query: QueryParameters) throws -> RouterPollReport? {
        guard let id = query["router_id"] else {
            let described = ["table_version", "table_age_seconds", "version", "listen"].filter { query[$0] != nil }
            if !described.isEmpty {
                throw APIError.badQuery(described.joined(separator: ", ") + " describe a router: router_id is required with them")
            }
            return nil
        }
        guard ConfigDocument.isValidComponentID(id) else {
            throw APIError.badQuery("router_id '\(id.prefix(64))' is invalid: use 1 to 63 lower-case letters, digits, '.' and '-', starting with a letter or digit")
        }
        let tableVersion = try query.int("table_version", range: 0...Int.max)
        let age = try query.int("table_age_seconds", range: 0...maxTableAgeSeconds)
        let version = query["version"] ?? ""
        guard version.utf8.count <= 100, version.unicodeScalars.allSatisfy({ (0x21...0x7e).contains($0.value) }) else {
            throw APIError.badQuery("version must be at most 100 printable ASCII characters without spaces")
        }
        let listen = query["listen"] ?? ""
        if query["listen"] != nil, !isListenAddress(listen) {
            throw APIError.badQuery("listen must be host:port (a host name, an IPv4 address or a bracketed IPv6 address, and a port 1-65535), got '\(listen.prefix(64))'")
        }
        return RouterPollReport(routerID: id, tableVersion: tableVersion, tableAgeSeconds: age, version: version, listen: listen)
    }

    /// `host:port`: letters, digits, '.', '-' and '_' or `[ipv6]`, and a port 1-65535.
    static func isListenAddress(_ text: String) -> Bool {
        guard text.utf8.count <= maxListenBytes, let colon = text.lastIndex(of: ":") else { return false }
        let host = text[..<colon]
        let port = text[text.index(after: colon)...]
        guard !port.isEmpty, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), port.count <= 5,
              let number = Int(port), (1...65_535).contains(number) else { return false }
        if host.hasPrefix("[") {
            guard host.count > 2, host.hasSuffix("]") else { return false }
            return host.dropFirst().dropLast().unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == ":" || $0 == "." }
        }
        return !host.isEmpty && host.unicodeScalars.allSatisfy { scalar in
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "." || scalar == "-" || scalar == "_"
        }
    }

    /// Upserts the router's row (and forgets routers silent for a day) in one statement. A
    /// failure is logged, never the poll's: routing matters more than the registry.
    private func record(_ report: RouterPollReport?, parkSeconds: Int) async {
        guard let report else { return }
        do {
            _ = try await services.db.pool.query(
                """
                WITH forgotten AS (DELETE FROM routers WHERE last_seen_at < now() - interval '1 day' AND id <> $1)
                INSERT INTO routers AS r (id, version, listen_address, table_version, table_age_seconds, last_seen_at, poll_deadline)
                VALUES ($1, $2, $3, $4, $5, now(), CASE WHEN $6::integer > 0 THEN now() + make_interval(secs => $6::integer) END)
                ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, listen_address = EXCLUDED.listen_address,
                  table_version = EXCLUDED.table_version, table_age_seconds = EXCLUDED.table_age_seconds,
                  last_seen_at = EXCLUDED.last_seen_at, poll_deadline = EXCLUDED.poll_deadline
                """,
                [report.routerID, report.version, report.listen, report.tableVersion, report.tableAgeSeconds, parkSeconds])
        } catch {
            services.logger.warning("could not record the router's poll", metadata: [
                "router.id": .string(report.routerID), "error": .string(String(describing: error))])
        }
    }

    static func read(_ conn: PostgresConnection) throws -> RouteTable {
        let version = try conn.query("SELECT version FROM platform_versions WHERE name = 'routes'").first?.decode("version", as: Int.self) ?? 0
        var backends: [String: [RouteBackend]] = [:]
        for row in try conn.query(
            """
            SELECT DISTINCT rd.route_guid, ir.app_guid, p.type, ir.instance_guid, ir.index, ag.host_address, ir.host_port,
              coalesce(ir.container_address, '') AS container_address, ir.container_port
            FROM route_destinations rd
              JOIN apps a ON a.guid = rd.app_guid AND a.state = 'STARTED'
              JOIN processes p ON p.app_guid = rd.app_guid AND p.type = rd.process_type
              JOIN instance_reports ir ON ir.process_guid = p.guid AND ir.app_guid = rd.app_guid AND ir.state = 'RUNNING'
                AND ir.host_port IS NOT NULL
              JOIN agents ag ON ag.id = ir.agent_id AND ag.state = 'active'
            ORDER BY rd.route_guid, ir.app_guid, p.type, ir.index, ir.instance_guid
            """) {
            backends[try row.decode("route_guid"), default: []].append(RouteBackend(
                appGUID: try row.decode("app_guid"), processType: try row.decode("type"), instanceGUID: try row.decode("instance_guid"),
                index: try row.decode("index"), hostAddress: try row.decode("host_address"), hostPort: try row.decode("host_port"),
                containerAddress: try row.decode("container_address"), containerPort: try row.decode("container_port")))
        }
        let routes = try conn.query(
            """
            SELECT r.guid, lower(CASE WHEN r.host = '' THEN d.name ELSE r.host || '.' || d.name END) AS host, r.path
            FROM routes r JOIN domains d ON d.guid = r.domain_guid ORDER BY r.id
            """).map { row in
            let guid = try row.decode("guid", as: String.self)
            return RouteTableEntry(routeGUID: guid, host: try row.decode("host"), path: try row.decode("path"),
                                   backends: backends[guid] ?? [])
        }
        return RouteTable(version: version, routes: routes)
    }
}
