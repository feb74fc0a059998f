import PlatformModels
import PlatformRules

/// The placement rule (``PlatformRules/PlacementRule``) over the health manager's view of the
/// cluster: agents as their registration and last heartbeat describe them, and every instance
/// reported or assigned.
extension PlacementRule {
    /// `agents`: the agents that are alive (the caller judges heartbeats); `instances`:
    /// everything reported or assigned. Every listed instance holds room, STOPPING ones too
    /// (they still run); only those that stay count towards the spread. The agents' reports
    /// cap their room, since an agent may still run instances no longer listed.
    init(alive agents: [AgentState], instances: [ActualInstance]) {
        let byAgent = Dictionary(grouping: instances, by: \.agentID)
        self.init(agents: agents.map { agent in
            let listed = byAgent[agent.id] ?? []
            var perProcess: [String: Int] = [:]
            for instance in listed where instance.state != .stopping { perProcess[instance.processGuid, default: 0] += 1 }
            return Agent(
                id: agent.id, stacks: agent.stacks, accepting: !agent.draining,
                capacity: Resources(agent.capacity),
                listed: Resources(memoryMB: listed.reduce(0) { $0 + $1.memoryMB }, diskMB: listed.reduce(0) { $0 + $1.diskMB },
                                  instances: listed.count),
                reportedFree: Resources(agent.available), instancesPerProcess: perProcess)
        })
    }

    /// The agent for one more instance of `process`, whose room it then takes.
    mutating func place(_ process: DesiredProcess) -> Result<String, Failure> {
        place(Request(processGuid: process.guid, memoryMB: process.memoryMB, diskMB: process.diskMB, stack: process.stack))
    }
}

extension PlacementRule.Resources {
    init(_ capacity: AgentCapacity) {
        self.init(memoryMB: capacity.memoryMB, diskMB: capacity.diskMB, instances: capacity.instances)
    }
}
