/// The internal API between execution agents (DEAs) and the Cloud Controller.
///
/// All paths are under `/internal/v1/` and need `Authorization: component <credential>`.
/// Times are Unix seconds as `Double`; log timestamps are Unix nanoseconds.
///
/// | call | path | body → answer |
/// |---|---|---|
/// | register (idempotent) | `PUT /internal/v1/agents/:agent_id` | ``AgentRegistration`` → ``AgentRegistered`` |
/// | heartbeat | `PUT /internal/v1/agents/:agent_id/heartbeat` | ``AgentHeartbeat`` → ``HeartbeatAck`` (404 `unknown agent`: register again) |
/// | assignments (long-poll) | `GET /internal/v1/agents/:agent_id/assignments?after=V&wait=S` | → ``AgentAssignments`` |
/// | instance events | `POST /internal/v1/agents/:agent_id/events` | ``InstanceEventBatch`` → ``BatchAnswer`` |
/// | log lines | `POST /internal/v1/logs` | ``LogBatch`` → ``BatchAnswer`` |
/// | droplet bits | `GET /internal/v1/droplets/:guid/download` | → tar.gz bytes, header `X-Content-SHA256` |
///
/// The assignments long-poll answers at once when the agent's assignment version differs
/// from `after`, otherwise waits up to `wait` seconds (max 60) for a change (the CC is woken by
/// `LISTEN cflike_assignments`) and then answers with the current set either way.
///
/// Heartbeat instances, events and log lines are judged one by one (BatchProtocol.swift): an
/// invalid item is named in `rejected` and the rest are stored. Free text (`details`,
/// `reason`, log messages) is cleaned, never refused: agents clean it where it enters too
/// (``UntrustedText``).
public enum AgentProtocol {
    /// The header carrying a droplet's SHA-256 on download.
    public static let sha256Header = "X-Content-SHA256"
    /// NOTIFY channel the CC uses to wake assignment long-polls (payload: agent id).
    public static let assignmentsChannel = "cflike_assignments"
    /// NOTIFY channel for new log lines (payload: app guid).
    public static let logsChannel = "cflike_logs"
}

/// What an agent can host.
public struct AgentCapacity: Codable, Sendable, Equatable {
    public var memoryMB: Int
    public var diskMB: Int
    public var instances: Int

    enum CodingKeys: String, CodingKey {
        case memoryMB = "memory_mb", diskMB = "disk_mb", instances
    }

    public init(memoryMB: Int, diskMB: Int, instances: Int) {
        self.memoryMB = memoryMB
        self.diskMB = diskMB
        self.instances = instances
    }
}

/// `PUT /internal/v1/agents/:agent_id`.
public struct AgentRegistration: Codable, Sendable, Equatable {
    /// Address other hosts (routers) use to reach this agent's host ports.
    public var hostAddress: String
    public var capacity: AgentCapacity
    public var stacks: [String]
    public var version: String

    enum CodingKeys: String, CodingKey {
        case hostAddress = "host_address", capacity, stacks, version
    }

    public init(hostAddress: String, capacity: AgentCapacity, stacks: [String], version: String) {
        self.hostAddress = hostAddress
        self.capacity = capacity
        self.stacks = stacks
        self.version = version
    }
}

/// Answer to a registration.
public struct AgentRegistered: Codable, Sendable, Equatable {
    public var agentID: String
    public var heartbeatIntervalSeconds: Int
    public var assignmentsVersion: Int

    enum CodingKeys: String, CodingKey {
        case agentID = "agent_id", heartbeatIntervalSeconds = "heartbeat_interval_seconds",
             assignmentsVersion = "assignments_version"
    }

    public init(agentID: String, heartbeatIntervalSeconds: Int, assignmentsVersion: Int) {
        self.agentID = agentID
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.assignmentsVersion = assignmentsVersion
    }
}

/// The state of one instance as its agent sees it (CF's instance states).
public enum InstanceState: String, Codable, Sendable, Equatable, CaseIterable {
    /// Container started, health check not yet passed: not routable.
    case starting = "STARTING"
    /// Healthy: routable.
    case running = "RUNNING"
    /// Exited or killed on its own (or failed its liveness check); `crash_count` says how often.
    case crashed = "CRASHED"
    /// Being stopped on request.
    case stopping = "STOPPING"
    /// Assigned but not running here (e.g. droplet download failed).
    case down = "DOWN"
}

/// Resource usage of one instance.
public struct InstanceUsage: Codable, Sendable, Equatable {
    /// CPU used since the last sample, as a fraction of one core (1.0 = one core busy).
    public var cpu: Double
    public var memoryBytes: Int64
    public var diskBytes: Int64

    enum CodingKeys: String, CodingKey {
        case cpu, memoryBytes = "mem", diskBytes = "disk"
    }

    public init(cpu: Double = 0, memoryBytes: Int64 = 0, diskBytes: Int64 = 0) {
        self.cpu = cpu
        self.memoryBytes = memoryBytes
        self.diskBytes = diskBytes
    }
}

/// One instance in a heartbeat.
public struct InstanceReport: Codable, Sendable, Equatable {
    public var instanceGUID: String
    public var processGUID: String
    public var appGUID: String
    public var index: Int
    public var state: InstanceState
    /// Port on the agent's host address forwarded to the container's `$PORT`.
    public var hostPort: Int?
    /// The container's own address (reachable from the agent's host).
    public var containerAddress: String?
    /// The port the app listens on inside the container (8080).
    public var containerPort: Int
    /// When the instance entered its current state (Unix seconds).
    public var since: Double
    /// Seconds since the container started (0 when not running).
    public var uptimeSeconds: Double
    public var usage: InstanceUsage
    public var memoryQuotaBytes: Int64
    public var diskQuotaBytes: Int64
    public var crashCount: Int
    /// Why it is in this state (e.g. `out of memory`, `health check failed`), if anything:
    /// one line of at most 1 KiB (``UntrustedText/Field/reason``).
    public var details: String?

    enum CodingKeys: String, CodingKey {
        case instanceGUID = "instance_guid", processGUID = "process_guid", appGUID = "app_guid", index, state,
             hostPort = "host_port", containerAddress = "container_address", containerPort = "container_port",
             since, uptimeSeconds = "uptime", usage, memoryQuotaBytes = "mem_quota", diskQuotaBytes = "disk_quota",
             crashCount = "crash_count", details
    }

    public init(instanceGUID: String, processGUID: String, appGUID: String, index: Int, state: InstanceState,
                hostPort: Int? = nil, containerAddress: String? = nil, containerPort: Int = 8080, since: Double,
                uptimeSeconds: Double = 0, usage: InstanceUsage = InstanceUsage(), memoryQuotaBytes: Int64 = 0,
                diskQuotaBytes: Int64 = 0, crashCount: Int = 0, details: String? = nil) {
        self.instanceGUID = instanceGUID
        self.processGUID = processGUID
        self.appGUID = appGUID
        self.index = index
        self.state = state
        self.hostPort = hostPort
        self.containerAddress = containerAddress
        self.containerPort = containerPort
        self.since = since
        self.uptimeSeconds = uptimeSeconds
        self.usage = usage
        self.memoryQuotaBytes = memoryQuotaBytes
        self.diskQuotaBytes = diskQuotaBytes
        self.crashCount = crashCount
        self.details = details
    }
}

/// `PUT /internal/v1/agents/:agent_id/heartbeat`: the whole actual state of the agent.
public struct AgentHeartbeat: Codable, Sendable, Equatable {
    /// Capacity still free after the instances below.
    public var available: AgentCapacity
    /// Every instance the agent has, assigned or not.
    public var instances: [InstanceReport]
    /// The assignment version the agent has converged to.
    public var assignmentsVersion: Int

    enum CodingKeys: String, CodingKey {
        case available, instances, assignmentsVersion = "assignments_version"
    }

    public init(available: AgentCapacity, instances: [InstanceReport], assignmentsVersion: Int) {
        self.available = available
        self.instances = instances
        self.assignmentsVersion = assignmentsVersion
    }
}

/// Answer to a heartbeat.
public struct HeartbeatAck: Codable, Sendable, Equatable {
    /// The agent's current assignment version (differs from the agent's: fetch again).
    public var assignmentsVersion: Int
    /// Instance reports refused as invalid (their instances keep what was last stored for
    /// them); nil from older controllers.
    public var rejected: [BatchRejection]?

    enum CodingKeys: String, CodingKey { case assignmentsVersion = "assignments_version", rejected }

    public init(assignmentsVersion: Int, rejected: [BatchRejection]? = nil) {
        self.assignmentsVersion = assignmentsVersion
        self.rejected = rejected
    }
}

/// How an instance is checked (CONTRACTS.md, Health checks).
public struct HealthCheckSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, Equatable { case port, http, process }
    public var type: Kind
    /// Path for `http` checks (default `/`).
    public var endpoint: String?
    /// Start timeout: seconds the instance has to become healthy (default 60, max 180).
    public var timeoutSeconds: Int
    /// Seconds one check may take (default 1).
    public var invocationTimeoutSeconds: Int

    enum CodingKeys: String, CodingKey {
        case type, endpoint, timeoutSeconds = "timeout", invocationTimeoutSeconds = "invocation_timeout"
    }

    public init(type: Kind = .port, endpoint: String? = nil, timeoutSeconds: Int = 60, invocationTimeoutSeconds: Int = 1) {
        self.type = type
        self.endpoint = endpoint
        self.timeoutSeconds = timeoutSeconds
        self.invocationTimeoutSeconds = invocationTimeoutSeconds
    }
}

/// The droplet an instance runs.
public struct DropletRef: Codable, Sendable, Equatable {
    public var guid: String
    public var sha256: String
    /// Path on the CC to download it from (`/internal/v1/droplets/:guid/download`).
    public var downloadPath: String

    enum CodingKeys: String, CodingKey { case guid, sha256, downloadPath = "download_path" }

    public init(guid: String, sha256: String, downloadPath: String) {
        self.guid = guid
        self.sha256 = sha256
        self.downloadPath = downloadPath
    }
}

/// One instance the CC wants running on an agent, with everything needed to run it.
public struct InstanceAssignment: Codable, Sendable, Equatable {
    public var instanceGUID: String
    public var appGUID: String
    public var appName: String
    public var processGUID: String
    public var processType: String
    /// The process version; a new one means new instances (redeploy).
    public var processVersion: String
    public var index: Int
    public var droplet: DropletRef
    /// The start command (the process's own, else the droplet's for this type); run with `bash -c`.
    public var command: String
    public var memoryMB: Int
    public var diskMB: Int
    public var fileDescriptors: Int
    public var healthCheck: HealthCheckSpec
    /// The user's environment variables.
    public var environment: [String: String]
    /// `VCAP_APPLICATION` members the CC knows (names, uris, space, org, limits, cf_api); the agent adds the instance-specific ones.
    public var vcapApplication: [String: JSONValue]
    /// `VCAP_SERVICES`, as JSON text (`{}` when nothing is bound).
    public var vcapServices: String

    enum CodingKeys: String, CodingKey {
        case instanceGUID = "instance_guid", appGUID = "app_guid", appName = "app_name", processGUID = "process_guid",
             processType = "process_type", processVersion = "process_version", index, droplet, command,
             memoryMB = "memory_in_mb", diskMB = "disk_in_mb", fileDescriptors = "fds", healthCheck = "health_check",
             environment, vcapApplication = "vcap_application", vcapServices = "vcap_services"
    }

    public init(instanceGUID: String, appGUID: String, appName: String, processGUID: String, processType: String,
                processVersion: String, index: Int, droplet: DropletRef, command: String, memoryMB: Int, diskMB: Int,
                fileDescriptors: Int = 16384, healthCheck: HealthCheckSpec = HealthCheckSpec(),
                environment: [String: String] = [:], vcapApplication: [String: JSONValue] = [:], vcapServices: String = "{}") {
        self.instanceGUID = instanceGUID
        self.appGUID = appGUID
        self.appName = appName
        self.processGUID = processGUID
        self.processType = processType
        self.processVersion = processVersion
        self.index = index
        self.droplet = droplet
        self.command = command
        self.memoryMB = memoryMB
        self.diskMB = diskMB
        self.fileDescriptors = fileDescriptors
        self.healthCheck = healthCheck
        self.environment = environment
        self.vcapApplication = vcapApplication
        self.vcapServices = vcapServices
    }
}

/// `GET /internal/v1/agents/:agent_id/assignments`: the complete desired set for the agent.
public struct AgentAssignments: Codable, Sendable, Equatable {
    public var version: Int
    public var instances: [InstanceAssignment]

    public init(version: Int, instances: [InstanceAssignment]) {
        self.version = version
        self.instances = instances
    }
}

/// Something that happened to an instance, reported at once.
public struct InstanceEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, Equatable {
        /// Became healthy.
        case running
        /// Exited or was killed without being asked to stop (or failed liveness).
        case crashed
        /// Stopped on request.
        case stopped
        /// Could not be started (droplet, container or health-check start timeout).
        case failed
    }
    public var instanceGUID: String
    public var processGUID: String
    public var appGUID: String
    public var index: Int
    public var type: Kind
    /// Exit status of the app's process when it exited (137 after SIGKILL/OOM).
    public var exitStatus: Int?
    /// Human words: `out of memory`, `exited with status 3`, `health check failed`, ...: one
    /// line of at most 1 KiB (``UntrustedText/Field/reason``).
    public var reason: String
    public var crashCount: Int
    public var timestamp: Double

    enum CodingKeys: String, CodingKey {
        case instanceGUID = "instance_guid", processGUID = "process_guid", appGUID = "app_guid", index, type,
             exitStatus = "exit_status", reason, crashCount = "crash_count", timestamp
    }

    public init(instanceGUID: String, processGUID: String, appGUID: String, index: Int, type: Kind,
                exitStatus: Int? = nil, reason: String, crashCount: Int = 0, timestamp: Double) {
        self.instanceGUID = instanceGUID
        self.processGUID = processGUID
        self.appGUID = appGUID
        self.index = index
        self.type = type
        self.exitStatus = exitStatus
        self.reason = reason
        self.crashCount = crashCount
        self.timestamp = timestamp
    }
}

/// `POST /internal/v1/agents/:agent_id/events`.
public struct InstanceEventBatch: Codable, Sendable, Equatable {
    public var events: [InstanceEvent]
    public init(events: [InstanceEvent]) { self.events = events }
}
