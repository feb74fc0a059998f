import Foundation

/// `GET /v3/admin/agents` resource: an execution agent (DEA) as the controller last heard from it.
public struct AgentResource: Codable, Sendable, Equatable {
    public struct Amounts: Codable, Sendable, Equatable {
        public var memoryInMB: Int
        public var diskInMB: Int
        public var instances: Int
        enum CodingKeys: String, CodingKey { case memoryInMB = "memory_in_mb", diskInMB = "disk_in_mb", instances }
        public init(memoryInMB: Int, diskInMB: Int, instances: Int) {
            self.memoryInMB = memoryInMB; self.diskInMB = diskInMB; self.instances = instances
        }
    }
    public var id: String
    public var hostAddress: String
    public var state: String
    public var version: String
    public var stacks: [String]
    public var capacity: Amounts
    public var available: Amounts
    /// Instances placed on the agent (desired) and those it reports running.
    public var placedInstances: Int
    public var runningInstances: Int
    public var registeredAt: String
    public var lastSeenAt: String
    /// Being emptied (`cf-like-admin drain`): nothing new is placed there and the health
    /// manager moves its instances away, replacements first.
    public var draining: Bool
    enum CodingKeys: String, CodingKey {
        case id, hostAddress = "host_address", state, version, stacks, capacity, available
        case placedInstances = "placed_instances", runningInstances = "running_instances"
        case registeredAt = "registered_at", lastSeenAt = "last_seen_at", draining
    }
    public init(id: String, hostAddress: String, state: String, version: String, stacks: [String], capacity: Amounts, available: Amounts,
                placedInstances: Int, runningInstances: Int, registeredAt: String, lastSeenAt: String, draining: Bool = false) {
        self.id = id; self.hostAddress = hostAddress; self.state = state; self.version = version; self.stacks = stacks
        self.capacity = capacity; self.available = available; self.placedInstances = placedInstances
        self.runningInstances = runningInstances; self.registeredAt = registeredAt; self.lastSeenAt = lastSeenAt
        self.draining = draining
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id); hostAddress = try c.decode(String.self, forKey: .hostAddress)
        state = try c.decode(String.self, forKey: .state); version = try c.decode(String.self, forKey: .version)
        stacks = try c.decode([String].self, forKey: .stacks); capacity = try c.decode(Amounts.self, forKey: .capacity)
        available = try c.decode(Amounts.self, forKey: .available)
        placedInstances = try c.decode(Int.self, forKey: .placedInstances); runningInstances = try c.decode(Int.self, forKey: .runningInstances)
        registeredAt = try c.decode(String.self, forKey: .registeredAt); lastSeenAt = try c.decode(String.self, forKey: .lastSeenAt)
        draining = try c.decodeIfPresent(Bool.self, forKey: .draining) ?? false
    }
}

/// `GET /v3/admin/stagers` resource.
public struct StagerResource: Codable, Sendable, Equatable {
    public var id: String
    public var version: String
    public var stacks: [String]
    /// Builds it reported working on and slots it offered at its last poll.
    public var running: Int
    public var freeSlots: Int
    public var firstSeenAt: String
    public var lastSeenAt: String
    enum CodingKeys: String, CodingKey {
        case id, version, stacks, running, freeSlots = "free_slots", firstSeenAt = "first_seen_at", lastSeenAt = "last_seen_at"
    }
    public init(id: String, version: String, stacks: [String], running: Int, freeSlots: Int, firstSeenAt: String, lastSeenAt: String) {
        self.id = id; self.version = version; self.stacks = stacks; self.running = running; self.freeSlots = freeSlots
        self.firstSeenAt = firstSeenAt; self.lastSeenAt = lastSeenAt
    }
}

/// `GET /v3/admin/instances` resource: an instance as its agent last reported it.
public struct InstanceResource: Codable, Sendable, Equatable {
    public var guid: String
    public var appGuid: String
    /// Empty when the app is gone but the agent still reports the instance.
    public var appName: String
    public var spaceGuid: String?
    public var processGuid: String
    public var processType: String
    public var index: Int
    public var state: String
    public var agentId: String
    public var hostAddress: String
    @NullCodable public var hostPort: Int?
    /// When the instance entered its state (Unix seconds).
    public var since: Double
    public var uptime: Double
    @NullCodable public var details: String?
    enum CodingKeys: String, CodingKey {
        case guid, appGuid = "app_guid", appName = "app_name", spaceGuid = "space_guid", processGuid = "process_guid"
        case processType = "process_type", index, state, agentId = "agent_id", hostAddress = "host_address", hostPort = "host_port"
        case since, uptime, details
    }
    public init(guid: String, appGuid: String, appName: String, spaceGuid: String?, processGuid: String, processType: String, index: Int,
                state: String, agentId: String, hostAddress: String, hostPort: Int?, since: Double, uptime: Double, details: String?) {
        self.guid = guid; self.appGuid = appGuid; self.appName = appName; self.spaceGuid = spaceGuid; self.processGuid = processGuid
        self.processType = processType; self.index = index; self.state = state; self.agentId = agentId; self.hostAddress = hostAddress
        self.hostPort = hostPort; self.since = since; self.uptime = uptime; self.details = details
    }
}

/// `GET /v3/admin/alerts` and `/v3/admin/alerts/:id` resource: an alert the health manager
/// raised (deduplicated by its labels), active until it resolves.
public struct AlertResource: Codable, Sendable, Equatable {
    public var id: Int
    /// `alertname` label: `InstanceCrashLoop`, `AppDown`, `AgentLost`, `InsufficientCapacity`, `StagingFailed`, `RouterTableStale`.
    public var name: String
    /// `active` or `resolved`.
    public var state: String
    /// `severity` label (`critical`, `warning`).
    public var severity: String
    /// The app it is about, if any (`app_guid` label).
    public var appGuid: String?
    public var labels: [String: String]
    /// `summary`, `description`; crash alerts also `exit_description` and `last_log_lines`.
    public var annotations: [String: String]
    public var startsAt: String
    public var endsAt: String?
    public var fingerprint: String
    enum CodingKeys: String, CodingKey {
        case id, name, state, severity, appGuid = "app_guid", labels, annotations, startsAt = "starts_at", endsAt = "ends_at", fingerprint
    }
    public init(id: Int, name: String, state: String, severity: String, appGuid: String?, labels: [String: String],
                annotations: [String: String], startsAt: String, endsAt: String?, fingerprint: String) {
        self.id = id; self.name = name; self.state = state; self.severity = severity; self.appGuid = appGuid
        self.labels = labels; self.annotations = annotations; self.startsAt = startsAt; self.endsAt = endsAt
        self.fingerprint = fingerprint
    }
}

/// `GET /v3/admin/health_managers` resource: every health manager that asked for the lease
/// recently; the one holding it acts, the others stand by.
public struct HealthManagerResource: Codable, Sendable, Equatable {
    public var id: String
    public var version: String
    /// Holds the lease now.
    public var active: Bool
    public var lastSeenAt: String
    /// When the lease it holds expires (active only).
    public var leaseExpiresAt: String?
    enum CodingKeys: String, CodingKey {
        case id, version, active, lastSeenAt = "last_seen_at", leaseExpiresAt = "lease_expires_at"
    }
    public init(id: String, version: String, active: Bool, lastSeenAt: String, leaseExpiresAt: String?) {
        self.id = id; self.version = version; self.active = active; self.lastSeenAt = lastSeenAt; self.leaseExpiresAt = leaseExpiresAt
    }
}

/// `GET /v3/admin/routers` resource: a router as its last route-table poll described it.
/// `table_version` against `current_table_version` shows how far behind it is.
public struct RouterResource: Codable, Sendable, Equatable {
    public var id: String
    public var version: String
    /// Its public listen address (`host:port`), empty if it did not say.
    public var listenAddress: String
    /// The route table version it served at its last poll; null before its first table.
    @NullCodable public var tableVersion: Int?
    /// Seconds its table had not matched the controller's at its last poll (~0 when in sync).
    @NullCodable public var tableAgeSeconds: Int?
    /// Its last poll; a router parked in a long-poll counts as seen until the poll's wait ends.
    public var lastSeenAt: String
    /// The controller's route table version now.
    public var currentTableVersion: Int
    enum CodingKeys: String, CodingKey {
        case id, version, listenAddress = "listen_address", tableVersion = "table_version"
        case tableAgeSeconds = "table_age_seconds", lastSeenAt = "last_seen_at", currentTableVersion = "current_table_version"
    }
    public init(id: String, version: String, listenAddress: String, tableVersion: Int?, tableAgeSeconds: Int?, lastSeenAt: String,
                currentTableVersion: Int) {
        self.id = id; self.version = version; self.listenAddress = listenAddress; self.tableVersion = tableVersion
        self.tableAgeSeconds = tableAgeSeconds; self.lastSeenAt = lastSeenAt; self.currentTableVersion = currentTableVersion
    }
}
