/// The route table routers keep, served by `GET /internal/v1/routes?after=V&wait=S`.
///
/// The long-poll answers at once when the table's version differs from `after`, otherwise
/// waits up to `wait` seconds (max 60) for `NOTIFY cflike_routes` and answers with the
/// current table either way. The version is `platform_versions.routes`, bumped in the same
/// transaction as any change that alters routing (routes, destinations, instances becoming
/// running or going away).
public struct RouteTable: Codable, Sendable, Equatable {
    public var version: Int
    public var routes: [RouteTableEntry]

    public init(version: Int, routes: [RouteTableEntry]) {
        self.version = version
        self.routes = routes
    }
}

/// One route (host + path) and the healthy instances behind it.
public struct RouteTableEntry: Codable, Sendable, Equatable {
    public var routeGUID: String
    /// Lower-case full host name, e.g. `hello.apps.localhost`.
    public var host: String
    /// Path prefix, `""` or starting with `/`.
    public var path: String
    public var backends: [RouteBackend]

    enum CodingKeys: String, CodingKey { case routeGUID = "route_guid", host, path, backends }

    public init(routeGUID: String, host: String, path: String, backends: [RouteBackend]) {
        self.routeGUID = routeGUID
        self.host = host
        self.path = path
        self.backends = backends
    }
}

/// One routable (RUNNING) instance.
public struct RouteBackend: Codable, Sendable, Equatable, Hashable {
    public var appGUID: String
    public var processType: String
    public var instanceGUID: String
    public var index: Int
    /// The agent's host address and the instance's host port (reachable from other hosts).
    public var hostAddress: String
    public var hostPort: Int
    /// The container's own address and port (reachable from the agent's host only).
    public var containerAddress: String
    public var containerPort: Int

    enum CodingKeys: String, CodingKey {
        case appGUID = "app_guid", processType = "process_type", instanceGUID = "instance_guid", index,
             hostAddress = "host_address", hostPort = "host_port", containerAddress = "container_address",
             containerPort = "container_port"
    }

    public init(appGUID: String, processType: String, instanceGUID: String, index: Int, hostAddress: String,
                hostPort: Int, containerAddress: String, containerPort: Int) {
        self.appGUID = appGUID
        self.processType = processType
        self.instanceGUID = instanceGUID
        self.index = index
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.containerAddress = containerAddress
        self.containerPort = containerPort
    }
}

/// Who polls the route table and how fresh the table it serves is: sent by routers as query
/// parameters of every `GET /internal/v1/routes` (all optional, for older routers), recorded
/// by the controller in `routers` and shown by `GET /v3/admin/routers`.
///
/// | parameter | meaning |
/// |---|---|
/// | `router_id` | the router's id (`router.router_id`), a component id |
/// | `table_version` | the route table version it serves; absent before its first table |
/// | `table_age_seconds` | seconds since its table last matched the controller's (~0 after a successful poll, the outage's length after one) |
/// | `version` | its platform version |
/// | `listen` | its public listen address (`host:port`) |
public struct RouterPollReport: Sendable, Equatable {
    public var routerID: String
    public var tableVersion: Int?
    public var tableAgeSeconds: Int?
    public var version: String
    public var listen: String

    public init(routerID: String, tableVersion: Int?, tableAgeSeconds: Int?, version: String, listen: String) {
        self.routerID = routerID
        self.tableVersion = tableVersion
        self.tableAgeSeconds = tableAgeSeconds
        self.version = version
        self.listen = listen
    }

    /// The query parameters, in a fixed order, values not yet percent-encoded.
    public var queryItems: [(name: String, value: String)] {
        var items: [(name: String, value: String)] = [("router_id", routerID)]
        if let tableVersion { items.append(("table_version", String(tableVersion))) }
        if let tableAgeSeconds { items.append(("table_age_seconds", String(tableAgeSeconds))) }
        items.append(("version", version))
        items.append(("listen", listen))
        return items
    }
}
