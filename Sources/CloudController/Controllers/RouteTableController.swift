import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `GET /internal/v1/routes?after=V&wait=S`: the route table routers long-poll (RouteTable.swift).
///
/// Every route with its backends: the RUNNING instances (as reported, with a host port) of each
/// destination's app and process type, of STARTED apps, on active agents. The version is
/// `platform_versions.routes`, read before the table so a table is never older than its version.
struct RouteTableController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("v1/routes", use: table)
    }

    @Sendable func table(_ request: Request, context: ControllerContext) async throws -> Response {
        let (after, wait) = try AgentsController.longPoll(request)
        let subscription = try await services.feed.subscribe(channel: RouteTableFeed.channel)
        var table = try await services.db.read { conn in try Self.read(conn) }
        if wait > 0, let after, table.version == after {
            if await subscription.wait(timeout: .seconds(wait)) != .timedOut {
                table = try await services.db.read { conn in try Self.read(conn) }
            }
        }
        return try JSONResponse.make(table)
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
