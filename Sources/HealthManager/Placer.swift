import PlatformModels

/// Chooses agents for new instances and keeps track of the room each placement takes.
///
/// An agent's room is the smaller of what it last reported free and its capacity minus every
/// instance listed on it (so instances assigned but not yet reported count too). Candidates are
/// agents that are not draining, have the process's stack, and have room for its memory, disk
/// and one more instance. Among them the one with the fewest instances of the process wins
/// (spread), then the one with the smallest share of its memory in use (least loaded), then the
/// lowest id.
public struct Placer: Sendable {
    /// Why an instance could not be placed.
    public enum Failure: Error, Sendable, Equatable {
        /// Agents with the stack exist but none has room.
        case insufficientResources
        /// Agents are there, but none has the stack.
        case noAgentWithStack(String)

        /// The words shown in process stats.
        public var text: String {
            switch self {
            case .insufficientResources: Decision.insufficientResources
            case .noAgentWithStack(let stack): "no agent with stack \(stack)"
            }
        }
    }

    struct Room: Sendable {
        var agent: AgentState
        var memoryMB: Int
        var diskMB: Int
        var slots: Int
        /// Instances per process guid on this agent, placed ones included.
        var perProcess: [String: Int]

        var memoryInUseShare: Double {
            agent.capacity.memoryMB > 0 ? 1 - Double(memoryMB) / Double(agent.capacity.memoryMB) : 1
        }
    }

    private var rooms: [Room]

    /// `agents`: the agents that are alive; `instances`: everything reported or assigned.
    public init(agents: [AgentState], instances: [ActualInstance]) {
        let byAgent = Dictionary(grouping: instances, by: \.agentID)
        rooms = agents.sorted { $0.id < $1.id }.map { agent in
            let listed = byAgent[agent.id] ?? []
            var perProcess: [String: Int] = [:]
            for instance in listed where instance.state != .stopping { perProcess[instance.processGuid, default: 0] += 1 }
            return Room(
                agent: agent,
                memoryMB: min(agent.available.memoryMB, agent.capacity.memoryMB - listed.reduce(0) { $0 + $1.memoryMB }),
                diskMB: min(agent.available.diskMB, agent.capacity.diskMB - listed.reduce(0) { $0 + $1.diskMB }),
                slots: min(agent.available.instances, agent.capacity.instances - listed.count),
                perProcess: perProcess)
        }
    }

    /// The agent for one more instance of `process`, whose room it then takes.
    public mutating func place(_ process: DesiredProcess) -> Result<String, Failure> {
        let open = rooms.indices.filter { !rooms[$0].agent.draining }
        let usable = open.filter { i in process.stack.map { rooms[i].agent.stacks.contains($0) } ?? true }
        let fitting = usable.filter { i in
            rooms[i].memoryMB >= process.memoryMB && rooms[i].diskMB >= process.diskMB && rooms[i].slots >= 1
        }
        guard let best = fitting.min(by: { a, b in
            let ca = rooms[a].perProcess[process.guid, default: 0], cb = rooms[b].perProcess[process.guid, default: 0]
            if ca != cb { return ca < cb }
            let la = rooms[a].memoryInUseShare, lb = rooms[b].memoryInUseShare
            if la != lb { return la < lb }
            return rooms[a].agent.id < rooms[b].agent.id
        }) else {
            if usable.isEmpty, !open.isEmpty, let stack = process.stack { return .failure(.noAgentWithStack(stack)) }
            return .failure(.insufficientResources)
        }
        rooms[best].memoryMB -= process.memoryMB
        rooms[best].diskMB -= process.diskMB
        rooms[best].slots -= 1
        rooms[best].perProcess[process.guid, default: 0] += 1
        return .success(rooms[best].agent.id)
    }
}
