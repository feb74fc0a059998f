import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/v3/routes` and their destinations. A host of a domain belongs to one space (table
/// `route_hosts`, enforced by its primary key), so another tenant cannot claim it under any path.
struct RoutesController {
    let services: Services
    static let columns = """
        routes.guid, routes.host, routes.path, routes.domain_guid, routes.space_guid, routes.labels, routes.annotations,
        routes.created_at, routes.updated_at, domains.name AS domain_name
        """
    static let from = "routes JOIN domains ON domains.guid = routes.domain_guid"

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("routes", use: list)
        group.post("routes", use: create)
        group.get("routes/:guid", use: get)
        group.delete("routes/:guid", use: delete)
        group.get("routes/:guid/destinations", use: destinations)
        group.post("routes/:guid/destinations", use: addDestinations)
        group.patch("routes/:guid/destinations", use: replaceDestinations)
        group.delete("routes/:guid/destinations/:destination_guid", use: removeDestination)
        group.get("apps/:guid/routes", use: listForApp)
    }

    static func destinationRows(_ conn: PostgresConnection, routes: [String]) throws -> [String: [RouteDestination]] {
        guard !routes.isEmpty else { return [:] }
        var result: [String: [RouteDestination]] = [:]
        for row in try conn.query(
            "SELECT guid, route_guid, app_guid, process_type, port FROM route_destinations WHERE route_guid = ANY($1::uuid[]) ORDER BY id",
            [routes]) {
            let route = try row.decode("route_guid", as: String.self)
            result[route, default: []].append(RouteDestination(
                guid: try row.decode("guid"),
                app: .init(guid: try row.decode("app_guid"), process: .init(type: try row.decode("process_type"))),
                port: try row.decode("port"), protocol: "http1"))
        }
        return result
    }

    func resource(_ row: PostgresRow, destinations: [RouteDestination]) throws -> RouteResource {
        let guid = try row.decode("guid", as: String.self)
        let host = try row.decode("host", as: String.self)
        let path = try row.decode("path", as: String.self)
        let domain = try row.decode("domain_name", as: String.self)
        let space = try row.decode("space_guid", as: String.self)
        let domainGuid = try row.decode("domain_guid", as: String.self)
        return RouteResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            host: host, path: path, url: (host.isEmpty ? domain : "\(host).\(domain)") + path, destinations: destinations,
            relationships: ["space": ToOneRelationship(guid: space), "domain": ToOneRelationship(guid: domainGuid)],
            metadata: try Rows.metadata(row),
            links: ["self": services.link("/v3/routes/\(guid)"), "space": services.link("/v3/spaces/\(space)"),
                    "domain": services.link("/v3/domains/\(domainGuid)"), "destinations": services.link("/v3/routes/\(guid)/destinations")])
    }

    private func listResponse(_ request: Request, actor: Actor, appGuid: String?, path: String) async throws -> Response {
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query),
                                  filters: ["guids", "hosts", "paths", "domain_guids", "space_guids", "organization_guids", "app_guids"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at"])
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("routes.space_guid IN (\(Visibility.spaces(filter.bind(actor.userGuid))))") }
        if let appGuid { filter.add("routes.guid IN (SELECT route_guid FROM route_destinations WHERE app_guid = \(filter.bind(appGuid)))") }
        if let guids = try query.guids("guids") { filter.add("routes.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let hosts = try query.parameters.list("hosts") { filter.add("routes.host = ANY(\(filter.bind(hosts.map { $0.lowercased() }))::text[])") }
        if let paths = query.parameters["paths"] {
            filter.add("routes.path = ANY(\(filter.bind(paths.split(separator: ",", omittingEmptySubsequences: false).map(String.init)))::text[])")
        }
        if let domains = try query.guids("domain_guids") { filter.add("routes.domain_guid = ANY(\(filter.bind(domains))::uuid[])") }
        if let spaces = try query.guids("space_guids") { filter.add("routes.space_guid = ANY(\(filter.bind(spaces))::uuid[])") }
        if let orgs = try query.guids("organization_guids") {
            filter.add("routes.space_guid IN (SELECT guid FROM spaces WHERE organization_guid = ANY(\(filter.bind(orgs))::uuid[]))")
        }
        if let apps = try query.guids("app_guids") {
            filter.add("routes.guid IN (SELECT route_guid FROM route_destinations WHERE app_guid = ANY(\(filter.bind(apps))::uuid[]))")
        }
        query.applyLabels(to: &filter, column: "routes.labels")
        var paged = filter
        let limit = paged.bind(query.perPage)
        let offset = paged.bind(query.offset)
        let whereSQL = filter.whereSQL
        let parameters = filter.parameters
        let pagedParameters = paged.parameters
        let order = query.orderSQL(table: "routes")
        let (total, rows, destinations) = try await services.db.read { conn in
            let total = try conn.query("SELECT count(*) AS n FROM \(Self.from) \(whereSQL)", parameters).first?.decode("n", as: Int.self) ?? 0
            let rows = try conn.query("SELECT \(Self.columns) FROM \(Self.from) \(whereSQL) \(order) LIMIT \(limit) OFFSET \(offset)",
                                      pagedParameters)
            let destinations = try Self.destinationRows(conn, routes: try rows.map { try $0.decode("guid", as: String.self) })
            return (total, rows, destinations)
        }
        let resources = try rows.map { row in try resource(row, destinations: destinations[try row.decode("guid", as: String.self)] ?? []) }
        return try JSONResponse.make(ListResponse(
            pagination: query.pagination(total: total, baseURL: services.config.externalURL, path: path), resources: resources))
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        try await listResponse(request, actor: try context.requireActor(), appGuid: nil, path: "/v3/routes")
    }

    @Sendable func listForApp(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        _ = try await services.db.read { conn in try AppsController.load(conn, guid: app, actor: actor).0["guid"] }
        return try await listResponse(request, actor: actor, appGuid: app, path: "/v3/apps/\(app)/routes")
    }

    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> (PostgresRow, RoleSet) {
        guard let row = try conn.query("SELECT \(columns) FROM \(from) WHERE routes.guid = $1", [guid]).first else {
            throw APIError.notFound("Route")
        }
        let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: try row.decode("space_guid"))
        guard roles.canSeeSpace else { throw APIError.notFound("Route") }
        return (row, roles)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Route")
        let (row, destinations) = try await services.db.read { conn in
            let row = try Self.load(conn, guid: guid, actor: actor).0
            return (row, try Self.destinationRows(conn, routes: [guid])[guid] ?? [])
        }
        return try JSONResponse.make(try resource(row, destinations: destinations))
    }

    /// Hosts are one DNS label; paths start with '/', are not just '/', and hold no '?', '#', '..' or control characters.
    static func validate(host: String, path: String) throws {
        if !host.isEmpty {
            guard host.count <= 63, host.first != "-", host.last != "-",
                  host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
            else { throw APIError.unprocessable("Host must be one DNS label of at most 63 letters, digits or hyphens") }
        }
        if !path.isEmpty {
            guard path.hasPrefix("/"), path != "/", path.count <= 128, !path.contains("?"), !path.contains("#"),
                  !path.split(separator: "/").contains(".."),
                  !path.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) || $0 == " " })
            else { throw APIError.unprocessable("Path must start with '/', must not be '/' alone and must not contain '?', '#', '..' or spaces") }
        }
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreateRouteRequest.self, from: request,
                                                  allowedKeys: ["host", "path", "relationships", "metadata", "port", "options"])
        let host = (body.host ?? "").lowercased()
        let path = body.path ?? ""
        try Self.validate(host: host, path: path)
        let space = try Validate.relationshipGuid(body.relationships.space, "space")
        let domain = try Validate.relationshipGuid(body.relationships.domain, "domain")
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let (row, guid) = try await services.db.write { conn in
            guard let spaceRow = try conn.query("SELECT organization_guid FROM spaces WHERE guid = $1", [space]).first else {
                throw APIError.unprocessable("Invalid space. Ensure that the space exists and you have access to it.")
            }
            let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: space)
            guard roles.canSeeSpace else { throw APIError.unprocessable("Invalid space. Ensure that the space exists and you have access to it.") }
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let org = try spaceRow.decode("organization_guid", as: String.self)
            guard let domainRow = try conn.query("SELECT name, organization_guid FROM domains WHERE guid = $1", [domain]).first,
                  try domainRow.decode("organization_guid", as: String?.self).map({ $0 == org }) ?? true
            else { throw APIError.unprocessable("Invalid domain. Ensure that the domain exists and you have access to it.") }
            let domainName = try domainRow.decode("name", as: String.self)
            if host.isEmpty && domainRow["organization_guid"] == nil {
                throw APIError.unprocessable("Missing host. Routes in shared domains must have a host defined.")
            }
            // Claim the host for this space; a host held by another space is refused by the primary key.
            try conn.query("INSERT INTO route_hosts(domain_guid, host, space_guid) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                           [domain, host, space])
            let owner = try conn.query("SELECT space_guid FROM route_hosts WHERE domain_guid = $1 AND host = $2", [domain, host])
                .first?.decode("space_guid", as: String.self)
            let fqdn = host.isEmpty ? domainName : "\(host).\(domainName)"
            guard owner == space else {
                throw APIError.unprocessable("Route '\(fqdn)\(path)' is unavailable: the host is taken.")
            }
            let guid = Rows.newGuid()
            do {
                try conn.query(
                    "INSERT INTO routes(guid, host, path, domain_guid, space_guid, labels, annotations) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    [guid, host, path, domain, space, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw APIError.unprocessable("Route already exists for domain '\(domainName)' with host '\(host)' and path '\(path)'.")
            }
            try AuditLog.record(conn, "audit.route.create", actor: actor, target: .init(guid: guid, type: "route", name: fqdn + path),
                                spaceGuid: space, organizationGuid: org)
            try AppsController.bumpRoutes(conn)
            return (try conn.query("SELECT \(Self.columns) FROM \(Self.from) WHERE routes.guid = $1", [guid]).rows[0], guid)
        }
        _ = guid
        return try JSONResponse.make(try resource(row, destinations: []), status: .created)
    }

    @Sendable func delete(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Route")
        let job = try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            try conn.query("DELETE FROM routes WHERE guid = $1", [guid])
            // Release the host once its last route is gone.
            try conn.query("""
                DELETE FROM route_hosts h WHERE h.domain_guid = $1 AND h.host = $2
                  AND NOT EXISTS (SELECT 1 FROM routes r WHERE r.domain_guid = h.domain_guid AND r.host = h.host)
                """, [try row.decode("domain_guid", as: String.self), try row.decode("host", as: String.self)])
            let space = try row.decode("space_guid", as: String.self)
            let org = try conn.query("SELECT organization_guid FROM spaces WHERE guid = $1", [space]).first?.decode("organization_guid", as: String.self)
            try AuditLog.record(conn, "audit.route.delete-request", actor: actor,
                                target: .init(guid: guid, type: "route", name: try row.decode("host")), spaceGuid: space, organizationGuid: org)
            try AppsController.bumpRoutes(conn)
            return try Services.completedJob(conn, operation: "route.delete", actor: actor)
        }
        return services.accepted(job: job)
    }

    private func destinationsResponse(_ guid: String, _ destinations: [RouteDestination]) throws -> Response {
        try JSONResponse.make(RouteDestinationsResponse(
            destinations: destinations,
            links: ["self": services.link("/v3/routes/\(guid)/destinations"), "route": services.link("/v3/routes/\(guid)")]))
    }

    @Sendable func destinations(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Route")
        let destinations = try await services.db.read { conn in
            _ = try Self.load(conn, guid: guid, actor: actor)
            return try Self.destinationRows(conn, routes: [guid])[guid] ?? []
        }
        return try destinationsResponse(guid, destinations)
    }

    private func writeDestinations(_ request: Request, _ context: ControllerContext, replace: Bool) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Route")
        let body = try await services.body.decode(DestinationsRequest.self, from: request, allowedKeys: ["destinations"])
        guard body.destinations.count <= 100 else { throw APIError.unprocessable("At most 100 destinations per request") }
        for d in body.destinations {
            guard Rows.isGuid(d.app.guid) else { throw APIError.unprocessable("destinations: app guid '\(d.app.guid.prefix(64))' is not a GUID") }
            if let port = d.port, !(1024...65535).contains(port) { throw APIError.unprocessable("destinations: port must be within 1024...65535") }
            if let type = d.app.process?.type { try Validate.name(type, field: "process type", max: 255) }
        }
        let destinations = try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let space = try row.decode("space_guid", as: String.self)
            if replace { try conn.query("DELETE FROM route_destinations WHERE route_guid = $1", [guid]) }
            for d in body.destinations {
                let app = d.app.guid.lowercased()
                // Apps of other spaces (or invisible ones) cannot be mapped: same message either way.
                guard try conn.query("SELECT 1 FROM apps WHERE guid = $1 AND space_guid = $2", [app, space]).first != nil else {
                    throw APIError.unprocessable("App '\(app)' does not exist or is not in the route's space.")
                }
                try conn.query("""
                    INSERT INTO route_destinations(guid, route_guid, app_guid, process_type, port) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT ON CONSTRAINT route_destinations_unique DO NOTHING
                    """, [Rows.newGuid(), guid, app, d.app.process?.type ?? "web", d.port ?? 8080])
                let appName = try conn.query("SELECT name FROM apps WHERE guid = $1", [app]).rows[0].decode("name", as: String.self)
                try AuditLog.record(conn, "audit.app.map-route", actor: actor, target: .init(guid: app, type: "app", name: appName),
                                    spaceGuid: space, data: ["route_guid": .string(guid)])
            }
            try AppsController.bumpRoutes(conn)
            return try Self.destinationRows(conn, routes: [guid])[guid] ?? []
        }
        return try destinationsResponse(guid, destinations)
    }

    @Sendable func addDestinations(_ request: Request, context: ControllerContext) async throws -> Response {
        try await writeDestinations(request, context, replace: false)
    }

    @Sendable func replaceDestinations(_ request: Request, context: ControllerContext) async throws -> Response {
        try await writeDestinations(request, context, replace: true)
    }

    @Sendable func removeDestination(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Route")
        let destination = try services.guidParameter(context, "destination_guid", resource: "Destination")
        try await services.db.write { conn in
            let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let removed = try conn.query("DELETE FROM route_destinations WHERE guid = $1 AND route_guid = $2 RETURNING app_guid",
                                         [destination, guid])
            guard let app = try removed.first?.decode("app_guid", as: String.self) else { throw APIError.notFound("Destination") }
            let appName = try conn.query("SELECT name FROM apps WHERE guid = $1", [app]).first?.decode("name", as: String.self) ?? ""
            try AuditLog.record(conn, "audit.app.unmap-route", actor: actor, target: .init(guid: app, type: "app", name: appName),
                                spaceGuid: try row.decode("space_guid"), data: ["route_guid": .string(guid)])
            try AppsController.bumpRoutes(conn)
        }
        return JSONResponse.noContent()
    }
}
