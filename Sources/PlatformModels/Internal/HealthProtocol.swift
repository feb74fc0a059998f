/// The internal API between the health manager and the Cloud Controller.
///
/// All paths are under `/internal/v1/health/` and need `Authorization: component <credential>`.
///
/// | call | path | body → answer |
/// |---|---|---|
/// | take or keep the lease | `POST /internal/v1/health/lease` | ``HealthLeaseRequest`` → ``HealthLease`` (409 while another holder has it) |
/// | give it up | `DELETE /internal/v1/health/lease?holder=H` | → 204 |
/// | state (long-poll) | `GET /internal/v1/health/state?after=V&wait=S` | → ``HealthSnapshot`` |
/// | apply decisions | `POST /internal/v1/health/actions` | ``HealthActions`` → ``HealthActionsAnswer`` (409 without the lease) |
/// | active alerts | `PUT /internal/v1/health/alerts` | ``HealthAlertSet`` → ``HealthAlertsAnswer`` (409 without the lease) |
///
/// Actions and alerts are judged one by one (BatchProtocol.swift): an invalid one is named in
/// `rejected` and the others are applied.
///
/// One health manager acts at a time: the holder of the lease `health-manager` in PostgreSQL.
/// The controller checks the lease again inside the transaction that applies actions or
/// alerts (fencing), so a holder whose lease lapsed while it was deciding changes nothing.
///
/// The state long-poll answers at once when the health version moved past `after`, else waits
/// up to `wait` seconds (max 60) for it to move: crash reports, agents registering, lost or
/// drained, failed builds and desired-state changes all bump it (`NOTIFY cflike_health`).
public enum HealthProtocol {
    /// NOTIFY channel that wakes the health manager's state long-poll.
    public static let channel = "cflike_health"
    /// The lease's name in `component_leases`.
    public static let leaseName = "health-manager"
}

/// `POST /internal/v1/health/lease`: acquire, or renew when already held.
public struct HealthLeaseRequest: Codable, Sendable, Equatable {
    /// The health manager's id.
    public var holder: String
    /// How long the lease lasts from now (1...300 seconds).
    public var durationSeconds: Double
    /// The holder's version and address, shown by `cf-like-admin status`.
    public var version: String

    enum CodingKeys: String, CodingKey {
        case holder, durationSeconds = "duration_seconds", version
    }

    public init(holder: String, durationSeconds: Double, version: String) {
        self.holder = holder
        self.durationSeconds = durationSeconds
        self.version = version
    }
}

/// The lease as it now stands.
public struct HealthLease: Codable, Sendable, Equatable {
    public var holder: String
    /// Unix seconds (the database's clock).
    public var expiresAt: Double

    enum CodingKeys: String, CodingKey {
        case holder, expiresAt = "expires_at"
    }

    public init(holder: String, expiresAt: Double) {
        self.holder = holder
        self.expiresAt = expiresAt
    }
}

/// Everything one decision pass needs, read in one transaction.
public struct HealthSnapshot: Codable, Sendable, Equatable {
    /// The health version this snapshot reflects (for the next long-poll's `after`).
    public var version: Int
    /// The database's clock when read (Unix seconds).
    public var asOf: Double
    public var processes: [HealthProcess]
    public var instances: [HealthInstance]
    public var agents: [HealthAgent]
    /// Builds that failed recently (the last `staging_failure_window` seconds).
    public var stagingFailures: [HealthStagingFailure]
    /// Routers that polled the route table within the last day; [] from older controllers.
    public var routers: [HealthRouter]

    enum CodingKeys: String, CodingKey {
        case version, asOf = "as_of", processes, instances, agents, stagingFailures = "staging_failures", routers
    }

    public init(version: Int, asOf: Double, processes: [HealthProcess], instances: [HealthInstance],
                agents: [HealthAgent], stagingFailures: [HealthStagingFailure], routers: [HealthRouter] = []) {
        self.version = version
        self.asOf = asOf
        self.processes = processes
        self.instances = instances
        self.agents = agents
        self.stagingFailures = stagingFailures
        self.routers = routers
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        asOf = try c.decode(Double.self, forKey: .asOf)
        processes = try c.decode([HealthProcess].self, forKey: .processes)
        instances = try c.decode([HealthInstance].self, forKey: .instances)
        agents = try c.decode([HealthAgent].self, forKey: .agents)
        stagingFailures = try c.decode([HealthStagingFailure].self, forKey: .stagingFailures)
        routers = try c.decodeIfPresent([HealthRouter].self, forKey: .routers) ?? []
    }
}

/// A router as its last route-table poll described it.
public struct HealthRouter: Codable, Sendable, Equatable {
    public var id: String
    /// Unix seconds (the database's clock) of its last poll; a router parked in a long-poll
    /// counts as seen until the poll's wait ends.
    public var lastSeen: Double
    /// The route table version it served; nil before its first table.
    public var tableVersion: Int?
    /// Seconds its table had not matched the controller's when it last polled (~0 when in sync).
    public var tableAgeSeconds: Int?

    enum CodingKeys: String, CodingKey {
        case id, lastSeen = "last_seen", tableVersion = "table_version", tableAgeSeconds = "table_age_seconds"
    }

    public init(id: String, lastSeen: Double, tableVersion: Int?, tableAgeSeconds: Int?) {
        self.id = id
        self.lastSeen = lastSeen
        self.tableVersion = tableVersion
        self.tableAgeSeconds = tableAgeSeconds
    }
}

/// A process the controller wants running (its app STARTED with a staged droplet), or that
/// still has instances.
public struct HealthProcess: Codable, Sendable, Equatable {
    public var guid: String
    public var appGuid: String
    public var appName: String
    public var spaceGuid: String
    public var type: String
    /// "STARTED" when instances should run (app started, droplet staged), else "STOPPED".
    public var state: String
    public var instances: Int
    public var memoryMB: Int
    public var diskMB: Int
    public var stack: String?
    /// When the app last changed state or was scaled (Unix seconds): "app down" waits a grace after it.
    public var updatedAt: Double

    enum CodingKeys: String, CodingKey {
        case guid, appGuid = "app_guid", appName = "app_name", spaceGuid = "space_guid", type, state, instances
        case memoryMB = "memory_mb", diskMB = "disk_mb", stack, updatedAt = "updated_at"
    }

    public init(guid: String, appGuid: String, appName: String, spaceGuid: String, type: String, state: String,
                instances: Int, memoryMB: Int, diskMB: Int, stack: String?, updatedAt: Double) {
        self.guid = guid
        self.appGuid = appGuid
        self.appName = appName
        self.spaceGuid = spaceGuid
        self.type = type
        self.state = state
        self.instances = instances
        self.memoryMB = memoryMB
        self.diskMB = diskMB
        self.stack = stack
        self.updatedAt = updatedAt
    }
}

/// An instance the controller placed (or could not place: `agent_id` nil), with what its agent
/// last reported about it.
public struct HealthInstance: Codable, Sendable, Equatable {
    public var guid: String
    public var processGuid: String
    public var appGuid: String
    public var index: Int
    /// nil: unplaced.
    public var agentID: String?
    /// The reported state; STARTING when not reported yet.
    public var state: InstanceState
    /// Crashes of this index since the count was last reset (carried across restarts).
    public var crashCount: Int
    /// Unix seconds.
    public var lastCrash: Double?
    /// When it entered its state (Unix seconds).
    public var since: Double
    public var memoryMB: Int
    public var diskMB: Int
    /// The last crash's words (exit status, OOM, health check), if any.
    public var exitDescription: String?
    /// Why it is unplaced, if it is.
    public var placementError: String?

    enum CodingKeys: String, CodingKey {
        case guid, processGuid = "process_guid", appGuid = "app_guid", index, agentID = "agent_id", state
        case crashCount = "crash_count", lastCrash = "last_crash", since, memoryMB = "memory_mb", diskMB = "disk_mb"
        case exitDescription = "exit_description", placementError = "placement_error"
    }

    public init(guid: String, processGuid: String, appGuid: String, index: Int, agentID: String?, state: InstanceState,
                crashCount: Int, lastCrash: Double?, since: Double, memoryMB: Int, diskMB: Int,
                exitDescription: String? = nil, placementError: String? = nil) {
        self.guid = guid
        self.processGuid = processGuid
        self.appGuid = appGuid
        self.index = index
        self.agentID = agentID
        self.state = state
        self.crashCount = crashCount
        self.lastCrash = lastCrash
        self.since = since
        self.memoryMB = memoryMB
        self.diskMB = diskMB
        self.exitDescription = exitDescription
        self.placementError = placementError
    }
}

/// An execution agent as registered and last heard from.
public struct HealthAgent: Codable, Sendable, Equatable {
    public var id: String
    public var capacity: AgentCapacity
    public var available: AgentCapacity
    public var stacks: [String]
    /// Unix seconds (the database's clock).
    public var lastHeartbeat: Double
    public var draining: Bool

    enum CodingKeys: String, CodingKey {
        case id, capacity, available, stacks, lastHeartbeat = "last_heartbeat", draining
    }

    public init(id: String, capacity: AgentCapacity, available: AgentCapacity, stacks: [String], lastHeartbeat: Double,
                draining: Bool) {
        self.id = id
        self.capacity = capacity
        self.available = available
        self.stacks = stacks
        self.lastHeartbeat = lastHeartbeat
        self.draining = draining
    }
}

/// A build that failed, as the stager reported it.
public struct HealthStagingFailure: Codable, Sendable, Equatable {
    public var buildGuid: String
    public var appGuid: String
    public var appName: String
    /// e.g. `NoAppDetectedError - ...`.
    public var error: String
    /// Unix seconds.
    public var failedAt: Double

    enum CodingKeys: String, CodingKey {
        case buildGuid = "build_guid", appGuid = "app_guid", appName = "app_name", error, failedAt = "failed_at"
    }

    public init(buildGuid: String, appGuid: String, appName: String, error: String, failedAt: Double) {
        self.buildGuid = buildGuid
        self.appGuid = appGuid
        self.appName = appName
        self.error = error
        self.failedAt = failedAt
    }
}

/// `POST /internal/v1/health/actions`.
public struct HealthActions: Codable, Sendable, Equatable {
    public var holder: String
    public var actions: [HealthAction]

    public init(holder: String, actions: [HealthAction]) {
        self.holder = holder
        self.actions = actions
    }
}

/// One decision, as the controller applies it. The controller re-checks each against the
/// current state and skips (and says so) what no longer applies.
public struct HealthAction: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// A new instance of `process` at `index` on `agent`; replaces an unplaced one or one on an agent that is gone.
        case place
        /// Nothing fits: `index` stays without an agent, `reason` shown in process stats.
        case unplaced
        /// `instance` crashed: a new instance takes its index on the same agent, carrying its crash count.
        case restart
        /// `instance` stayed up: its crash count goes back to 0.
        case resetCrashCount = "reset_crash_count"
        /// `instance` goes (`reason` says why).
        case stop
    }

    public var kind: Kind
    public var process: String
    public var index: Int
    public var instance: String?
    public var agent: String?
    public var reason: String?
    /// `place` and `unplaced`: instances of this index the new one replaces (on an agent that
    /// is gone); they are removed and their crash count carries over.
    public var replaces: [String]?

    public init(kind: Kind, process: String, index: Int, instance: String? = nil, agent: String? = nil, reason: String? = nil,
                replaces: [String]? = nil) {
        self.kind = kind
        self.process = process
        self.index = index
        self.instance = instance
        self.agent = agent
        self.reason = reason
        self.replaces = replaces
    }
}

public struct HealthActionsAnswer: Codable, Sendable, Equatable {
    public var applied: Int
    /// One line per skipped action: what and why.
    public var skipped: [String]
    /// Actions refused as invalid (BatchProtocol.swift); nil from older controllers.
    public var rejected: [BatchRejection]?

    public init(applied: Int, skipped: [String], rejected: [BatchRejection]? = nil) {
        self.applied = applied
        self.skipped = skipped
        self.rejected = rejected
    }
}

/// `PUT /internal/v1/health/alerts`: every alert that should be active now. Alerts not in the
/// set are resolved; new ones start; the same labels keep one alert (deduplication).
public struct HealthAlertSet: Codable, Sendable, Equatable {
    public var holder: String
    public var alerts: [AlertDraft]

    public init(holder: String, alerts: [AlertDraft]) {
        self.holder = holder
        self.alerts = alerts
    }
}

/// An alert as the health manager raises it. `labels` identify it (they include `alertname`);
/// `annotations` describe it. The controller adds `last_log_lines` for alerts with an `app_guid`
/// label and a `crash` in their name. Values may carry app and buildpack text: both sides store
/// them ``sanitized()`` (labels one line of at most 1 KiB, annotations at most 8 KiB).
public struct AlertDraft: Codable, Sendable, Equatable {
    public var labels: [String: String]
    public var annotations: [String: String]

    public init(labels: [String: String], annotations: [String: String]) {
        self.labels = labels
        self.annotations = annotations
    }

    public var name: String { labels["alertname"] ?? "" }
}

/// A stored alert.
public struct AlertRecord: Codable, Sendable, Equatable {
    public var id: Int
    /// `active` or `resolved`.
    public var state: String
    public var labels: [String: String]
    public var annotations: [String: String]
    /// Unix seconds.
    public var startsAt: Double
    public var endsAt: Double?
    /// Stable id derived from the labels.
    public var fingerprint: String

    enum CodingKeys: String, CodingKey {
        case id, state, labels, annotations, startsAt = "starts_at", endsAt = "ends_at", fingerprint
    }

    public init(id: Int, state: String, labels: [String: String], annotations: [String: String], startsAt: Double,
                endsAt: Double?, fingerprint: String) {
        self.id = id
        self.state = state
        self.labels = labels
        self.annotations = annotations
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.fingerprint = fingerprint
    }

    public var name: String { labels["alertname"] ?? "" }
}

public struct HealthAlertsAnswer: Codable, Sendable, Equatable {
    /// Every active alert after the update.
    public var active: [AlertRecord]
    /// Alerts this update resolved.
    public var resolved: [AlertRecord]
    /// Alerts refused as invalid (BatchProtocol.swift); an active alert whose update was
    /// refused stays active as it was. nil from older controllers.
    public var rejected: [BatchRejection]?

    public init(active: [AlertRecord], resolved: [AlertRecord], rejected: [BatchRejection]? = nil) {
        self.active = active
        self.resolved = resolved
        self.rejected = rejected
    }
}
