import PlatformModels

/// Whether an app wants its processes running.
public enum DesiredAppState: String, Sendable, Equatable {
    case started = "STARTED"
    case stopped = "STOPPED"
}

/// One process as the Cloud Controller wants it.
public struct DesiredProcess: Sendable, Equatable {
    public var guid: String
    public var appGuid: String
    public var state: DesiredAppState
    public var instances: Int
    public var memoryMB: Int
    public var diskMB: Int
    /// The app's stack; nil runs on any agent.
    public var stack: String?

    public init(guid: String, appGuid: String, state: DesiredAppState = .started, instances: Int,
                memoryMB: Int, diskMB: Int, stack: String? = nil) {
        self.guid = guid
        self.appGuid = appGuid
        self.state = state
        self.instances = instances
        self.memoryMB = memoryMB
        self.diskMB = diskMB
        self.stack = stack
    }

    /// How many instances should run: 0 for a stopped app.
    public var target: Int { state == .started ? max(0, instances) : 0 }
}

/// Every process the Cloud Controller wants, and how sure we are that this is current.
public struct DesiredState: Sendable, Equatable {
    public var processes: [DesiredProcess]
    /// False when the last attempt to read desired state failed (CC or database unreachable).
    public var isFresh: Bool
    /// When the processes were read (Unix seconds); nil: never read.
    public var asOf: Double?

    public init(processes: [DesiredProcess], isFresh: Bool = true, asOf: Double?) {
        self.processes = processes
        self.isFresh = isFresh
        self.asOf = asOf
    }

    /// Nothing is known: nothing may be stopped or restarted.
    public static let unknown = DesiredState(processes: [], isFresh: false, asOf: nil)
}

/// One instance as its agent last reported it, or as assigned and not reported yet (STARTING).
public struct ActualInstance: Sendable, Equatable {
    public var guid: String
    public var processGuid: String
    public var index: Int
    public var agentID: String
    public var state: InstanceState
    /// Crashes since the count was last reset.
    public var crashCount: Int
    /// When it last crashed (Unix seconds); nil: take `since`.
    public var lastCrash: Double?
    /// When it entered its current state (Unix seconds).
    public var since: Double
    /// What it holds on its agent.
    public var memoryMB: Int
    public var diskMB: Int

    public init(guid: String, processGuid: String, index: Int, agentID: String, state: InstanceState,
                crashCount: Int = 0, lastCrash: Double? = nil, since: Double, memoryMB: Int, diskMB: Int) {
        self.guid = guid
        self.processGuid = processGuid
        self.index = index
        self.agentID = agentID
        self.state = state
        self.crashCount = crashCount
        self.lastCrash = lastCrash
        self.since = since
        self.memoryMB = memoryMB
        self.diskMB = diskMB
    }
}

/// An execution agent as its registration and last heartbeat describe it.
public struct AgentState: Sendable, Equatable {
    public var id: String
    public var capacity: AgentCapacity
    /// What the agent reported free at its last heartbeat.
    public var available: AgentCapacity
    public var stacks: [String]
    /// Unix seconds.
    public var lastHeartbeat: Double
    /// Being emptied for maintenance: nothing new goes there and its instances move away.
    public var draining: Bool

    public init(id: String, capacity: AgentCapacity, available: AgentCapacity? = nil, stacks: [String],
                lastHeartbeat: Double, draining: Bool = false) {
        self.id = id
        self.capacity = capacity
        self.available = available ?? capacity
        self.stacks = stacks
        self.lastHeartbeat = lastHeartbeat
        self.draining = draining
    }
}

/// Everything the agents report.
public struct ActualState: Sendable, Equatable {
    public var agents: [AgentState]
    public var instances: [ActualInstance]

    public init(agents: [AgentState], instances: [ActualInstance]) {
        self.agents = agents
        self.instances = instances
    }
}
