import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

/// `GET /v3/info`, as far as `status` shows it.
struct PlatformInfo: Codable {
    var name: String
    var version: String
}

/// `cf-like-admin status --json`.
struct PlatformStatus: Codable {
    struct Controller: Codable {
        var address: String
        var version: String
    }
    struct Totals: Codable {
        var apps: Int
        var instancesRunning: Int
        var instancesCrashed: Int
        var memoryUsedMB: Int
        var memoryFreeMB: Int
        var instanceSlotsUsed: Int
        var instanceSlotsFree: Int
        enum CodingKeys: String, CodingKey {
            case apps, instancesRunning = "instances_running", instancesCrashed = "instances_crashed"
            case memoryUsedMB = "memory_used_mb", memoryFreeMB = "memory_free_mb"
            case instanceSlotsUsed = "instance_slots_used", instanceSlotsFree = "instance_slots_free"
        }
    }
    var controller: Controller
    var stagers: [StagerResource]
    var agents: [AgentResource]
    /// Empty when none reports (or the controller does not list them).
    var healthManagers: [HealthManagerResource] = []
    /// Empty when none reports (or the controller does not list them).
    var routers: [RouterResource] = []
    /// Nil when the controller does not list alerts.
    var activeAlerts: Int?
    var totals: Totals
    enum CodingKeys: String, CodingKey {
        case controller, stagers, agents, healthManagers = "health_managers", routers, activeAlerts = "active_alerts", totals
    }

    /// Totals over the active agents (a lost agent's capacity is not there to use).
    static func totals(apps: Int, agents: [AgentResource], instances: [InstanceResource]) -> Totals {
        let active = agents.filter { $0.state == "active" }
        return Totals(
            apps: apps, instancesRunning: instances.filter { $0.state == "RUNNING" }.count,
            instancesCrashed: instances.filter { $0.state == "CRASHED" }.count,
            memoryUsedMB: active.reduce(0) { $0 + $1.capacity.memoryInMB - $1.available.memoryInMB },
            memoryFreeMB: active.reduce(0) { $0 + $1.available.memoryInMB },
            instanceSlotsUsed: active.reduce(0) { $0 + $1.capacity.instances - $1.available.instances },
            instanceSlotsFree: active.reduce(0) { $0 + $1.available.instances })
    }

    /// The component table's health manager rows.
    static func healthManagerRows(_ managers: [HealthManagerResource]) -> [[String]] {
        managers.map { ["health manager", $0.id, "", $0.version, $0.active ? "active" : "standby", $0.lastSeenAt] }
    }

    /// The component table's router rows: listen address, and the table version it serves
    /// against the controller's.
    static func routerRows(_ routers: [RouterResource]) -> [[String]] {
        routers.map { ["router", $0.id, $0.listenAddress, $0.version, routerState($0), $0.lastSeenAt] }
    }

    /// "table 42 (current)", "table 41 of 42", "no table yet".
    static func routerState(_ router: RouterResource) -> String {
        guard let version = router.tableVersion else { return "no table yet" }
        if version == router.currentTableVersion { return "table \(version) (current)" }
        return "table \(version) of \(router.currentTableVersion)"
    }

    /// The summary lines under the component table: totals, health manager, routers, active alerts.
    func summaryRows() -> [[String]] {
        let t = totals
        var rows = [
            ["apps:", "\(t.apps)"],
            ["instances:", "\(t.instancesRunning) running, \(t.instancesCrashed) crashed"],
            ["memory:", "\(t.memoryUsedMB)M used, \(t.memoryFreeMB)M free"],
            ["instance slots:", "\(t.instanceSlotsUsed) used, \(t.instanceSlotsFree) free"],
        ]
        if healthManagers.isEmpty {
            rows.append(["health manager:", "none reporting"])
        } else if !healthManagers.contains(where: \.active) {
            rows.append(["health manager:", "none active (\(healthManagers.count) standing by)"])
        }
        if routers.isEmpty { rows.append(["routers:", "none reporting"]) }
        if let activeAlerts { rows.append(["alerts:", "\(activeAlerts) active"]) }
        return rows
    }
}

extension Session {
    /// A list the controller may not have yet: nil when it answers 404.
    func allIfListed<R: Codable & Sendable>(_ path: String, as type: R.Type) async throws -> [R]? {
        guard let first = try Self.pageIfListed(try await send("GET", path), as: R.self) else { return nil }
        guard let next = first.pagination.next?.href else { return first.resources }
        return first.resources + (try await all(next, as: R.self))
    }

    /// A list's first page, or nil when the controller answers 404 (it does not list them yet).
    static func pageIfListed<R: Codable & Sendable>(_ answer: PlatformClient.Answer, as type: R.Type) throws -> ListResponse<R>? {
        if answer.status == 404 { return nil }
        try PlatformClient.check(answer)
        return try answer.decode(ListResponse<R>.self)
    }

    /// How many alerts are active, or nil when the controller does not list alerts.
    func activeAlertCount() async throws -> Int? {
        let answer = try await send("GET", "/v3/admin/alerts?states=active&per_page=1")
        if answer.status == 404 { return nil }
        try PlatformClient.check(answer)
        return try answer.decode(ListResponse<AlertResource>.self).pagination.totalResults
    }
}

/// `cf-like-admin dea ID --json`.
struct AgentDetails: Codable {
    var agent: AgentResource
    var instances: [InstanceResource]
}

/// Rows the admin listings share.
enum AdminRows {
    static func agent(_ a: AgentResource) -> [String] {
        [a.id, a.hostAddress, agentState(a),
         "\(a.capacity.memoryInMB - a.available.memoryInMB)M of \(a.capacity.memoryInMB)M",
         "\(a.capacity.diskInMB - a.available.diskInMB)M of \(a.capacity.diskInMB)M",
         "\(a.capacity.instances - a.available.instances) of \(a.capacity.instances)", a.version, a.lastSeenAt]
    }
    static let agentHeaders = ["id", "host", "state", "memory", "disk", "instances", "version", "last seen"]

    /// The agent's state, with `draining` when it is being emptied.
    static func agentState(_ a: AgentResource) -> String {
        a.draining ? "\(a.state), draining" : a.state
    }

    static func instance(_ i: InstanceResource) -> [String] {
        [i.appName.isEmpty ? i.appGuid : i.appName, i.processType, "#\(i.index)", i.state.lowercased(), i.agentId,
         i.hostPort.map { "\(i.hostAddress):\($0)" } ?? i.hostAddress,
         AppSummary.since(Date(timeIntervalSince1970: i.since)), i.details ?? ""]
    }
    static let instanceHeaders = ["app", "process", "index", "state", "dea", "address", "since", "details"]
}

/// `cf-like-admin status`.
public struct StatusCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the platform's components and totals: controller, stagers, DEAs, health managers, routers, apps, instances, capacity, alerts.",
        discussion: "Example:\n  cf-like-admin status\n  cf-like-admin status --json")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let info = try await session.call("GET", "/v3/info", as: PlatformInfo.self)
            let stagers = try await session.all("/v3/admin/stagers", as: StagerResource.self)
            let agents = try await session.all("/v3/admin/agents", as: AgentResource.self)
            let instances = try await session.all("/v3/admin/instances?per_page=5000", as: InstanceResource.self)
            let apps = try await session.call("GET", "/v3/apps?per_page=1", as: ListResponse<AppResource>.self).pagination.totalResults
            let managers = try await session.allIfListed("/v3/admin/health_managers", as: HealthManagerResource.self) ?? []
            let routers = try await session.allIfListed("/v3/admin/routers", as: RouterResource.self) ?? []
            let activeAlerts = try await session.activeAlertCount()
            let status = PlatformStatus(controller: .init(address: session.client.api, version: info.version), stagers: stagers,
                                        agents: agents, healthManagers: managers, routers: routers, activeAlerts: activeAlerts,
                                        totals: PlatformStatus.totals(apps: apps, agents: agents, instances: instances))
            if output.json { print(try Output.json(status)); return }
            Output.printTable(["component", "id", "address", "version", "state", "last seen"],
                              [["controller", "", status.controller.address, status.controller.version, "up", "now"]]
                                + stagers.map { ["stager", $0.id, "", $0.version, "\($0.running) staging, \($0.freeSlots) free", $0.lastSeenAt] }
                                + agents.map { ["dea", $0.id, $0.hostAddress, $0.version, AdminRows.agentState($0), $0.lastSeenAt] }
                                + PlatformStatus.healthManagerRows(managers)
                                + PlatformStatus.routerRows(routers))
            print("")
            print(Output.table(["", ""], status.summaryRows()).split(separator: "\n").dropFirst().joined(separator: "\n"))
        }
    }
}

/// `cf-like-admin deas`.
public struct DEAsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "deas", abstract: "List the execution agents (DEAs) with their capacity in use.",
        discussion: "Example:\n  cf-like-admin deas\n  cf-like-admin deas --json")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let agents = try await Session().all("/v3/admin/agents", as: AgentResource.self)
            if output.json { print(try Output.json(agents)); return }
            Output.printTable(AdminRows.agentHeaders, agents.map(AdminRows.agent))
        }
    }
}

/// `cf-like-admin dea ID`.
public struct DEACommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dea", abstract: "Show one execution agent (DEA): capacity and the instances it runs.",
        discussion: "Example:\n  cf-like-admin dea dea-1\n  cf-like-admin dea dea-1 --json")
    @Argument(help: "Agent id, as `cf-like-admin deas` lists it.") var id: String
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let query = PlatformClient.query(id)
            guard let agent = try await session.all("/v3/admin/agents?ids=\(query)", as: AgentResource.self).first else {
                throw CLIError.operation("DEA '\(id)' not found; `cf-like-admin deas` lists them")
            }
            let instances = try await session.all("/v3/admin/instances?agent_ids=\(query)&per_page=5000", as: InstanceResource.self)
            if output.json { print(try Output.json(AgentDetails(agent: agent, instances: instances))); return }
            print(Output.table(["", ""], [
                ["id:", agent.id], ["host:", agent.hostAddress], ["state:", agent.state], ["draining:", agent.draining ? "yes" : "no"],
                ["version:", agent.version],
                ["stacks:", agent.stacks.joined(separator: ", ")],
                ["memory:", "\(agent.capacity.memoryInMB - agent.available.memoryInMB)M of \(agent.capacity.memoryInMB)M"],
                ["disk:", "\(agent.capacity.diskInMB - agent.available.diskInMB)M of \(agent.capacity.diskInMB)M"],
                ["instances:", "\(agent.capacity.instances - agent.available.instances) of \(agent.capacity.instances)"],
                ["registered:", agent.registeredAt], ["last seen:", agent.lastSeenAt],
            ]).split(separator: "\n").dropFirst().joined(separator: "\n"))
            print("")
            Output.printTable(AdminRows.instanceHeaders, instances.map(AdminRows.instance))
        }
    }
}

/// `cf-like-admin instances`.
public struct InstancesCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "instances", abstract: "List every app instance on every DEA, as the DEAs last reported them.",
        discussion: "Example:\n  cf-like-admin instances\n  cf-like-admin instances --json")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let instances = try await Session().all("/v3/admin/instances?per_page=5000", as: InstanceResource.self)
            if output.json { print(try Output.json(instances)); return }
            Output.printTable(AdminRows.instanceHeaders, instances.map(AdminRows.instance))
        }
    }
}

/// `cf-like-admin routes`.
public struct RouteTableCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "Show the route table as the routers see it, with the instance addresses behind each route.",
        discussion: "Example:\n  cf-like-admin routes\n  cf-like-admin routes --json")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let table = try await Session().call("GET", "/v3/admin/route_table", as: RouteTable.self)
            if output.json { print(try Output.json(table)); return }
            print("route table version \(table.version)\n")
            Output.printTable(["route", "backends"], table.routes.map { route in
                [route.host + route.path,
                 route.backends.isEmpty ? "(none)" : route.backends.map { "\($0.hostAddress):\($0.hostPort)" }.joined(separator: ", ")]
            })
        }
    }
}

/// `cf-like-admin events [--type T]`.
public struct PlatformEventsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "events", abstract: "List the platform's recent audit events, newest first.",
        discussion: "Example:\n  cf-like-admin events\n  cf-like-admin events --type audit.app.create --json")
    @Option(name: .long, help: "Only events of this type (comma-separated for several).") var type: String?
    @Option(name: .long, help: "How many events to show (1-5000).") var limit = 50
    @OptionGroup var output: JSONOption
    public init() {}

    public func validate() throws {
        if !(1...5000).contains(limit) { throw ValidationError("--limit must be between 1 and 5000") }
    }

    public func run() async throws {
        try await reportingErrors {
            var path = "/v3/audit_events?order_by=-created_at&per_page=\(limit)"
            if let type { path += "&types=\(PlatformClient.query(type))" }
            let events = try await Session().call("GET", path, as: ListResponse<AuditEventResource>.self).resources
            if output.json { print(try Output.json(events)); return }
            Output.printTable(["time", "event", "actor", "target"], events.map { [$0.createdAt, $0.type, $0.actor.name, $0.target.name] })
        }
    }
}
