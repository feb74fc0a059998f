import PlatformModels

/// Translates between the controller's ``HealthSnapshot`` and the decider's pure model, and
/// from decisions back to ``HealthAction``s the controller applies.
public enum SnapshotAdapter {
    public static func desired(_ snapshot: HealthSnapshot) -> DesiredState {
        DesiredState(
            processes: snapshot.processes.map { process in
                DesiredProcess(guid: process.guid, appGuid: process.appGuid, state: process.state == "STARTED" ? .started : .stopped,
                               instances: process.instances, memoryMB: process.memoryMB, diskMB: process.diskMB, stack: process.stack)
            },
            isFresh: true, asOf: snapshot.asOf)
    }

    /// Placed instances only: an unplaced index is simply missing to the decider.
    public static func actual(_ snapshot: HealthSnapshot) -> ActualState {
        ActualState(
            agents: agents(snapshot),
            instances: snapshot.instances.compactMap { instance in
                guard let agent = instance.agentID else { return nil }
                return ActualInstance(guid: instance.guid, processGuid: instance.processGuid, index: instance.index, agentID: agent,
                                      state: instance.state, crashCount: instance.crashCount, lastCrash: instance.lastCrash,
                                      since: instance.since, memoryMB: instance.memoryMB, diskMB: instance.diskMB)
            })
    }

    static func agents(_ snapshot: HealthSnapshot) -> [AgentState] {
        snapshot.agents.map { agent in
            AgentState(id: agent.id, capacity: agent.capacity, available: agent.available, stacks: agent.stacks,
                       lastHeartbeat: agent.lastHeartbeat, draining: agent.draining)
        }
    }

    /// The actions for `plan`. A placement replaces the index's instances that are unplaced or
    /// on an agent that is gone; an `unplaced` decision already recorded with the same reason
    /// and nothing to replace is not sent again.
    public static func actions(_ plan: Plan, snapshot: HealthSnapshot, decider: Decider, now: Double) -> [HealthAction] {
        let alive = Set(agents(snapshot).filter { decider.isAlive($0, now: now) }.map(\.id))
        let byIndex = Dictionary(grouping: snapshot.instances) { IndexKey(process: $0.processGuid, index: $0.index) }
        func replaceable(_ process: String, _ index: Int) -> [HealthInstance] {
            (byIndex[IndexKey(process: process, index: index)] ?? []).filter { instance in
                instance.agentID.map { !alive.contains($0) } ?? true
            }
        }
        return plan.decisions.compactMap { decision -> HealthAction? in
            switch decision {
            case let .place(process, index, agent):
                let replaced = replaceable(process, index).map(\.guid)
                return HealthAction(kind: .place, process: process, index: index, agent: agent, replaces: replaced.isEmpty ? nil : replaced)
            case let .unplaced(process, index, reason):
                let replaced = replaceable(process, index)
                let gone = replaced.filter { $0.agentID != nil }.map(\.guid)
                if gone.isEmpty, replaced.contains(where: { $0.placementError == reason }) { return nil }
                return HealthAction(kind: .unplaced, process: process, index: index, reason: reason, replaces: gone.isEmpty ? nil : gone)
            case let .restart(instance, process, index, agent, _):
                return HealthAction(kind: .restart, process: process, index: index, instance: instance, agent: agent)
            case let .resetCrashCount(instance, process, index):
                return HealthAction(kind: .resetCrashCount, process: process, index: index, instance: instance)
            case let .stop(instance, process, index, agent, reason):
                return HealthAction(kind: .stop, process: process, index: index, instance: instance, agent: agent, reason: reason.rawValue)
            }
        }
    }

    struct IndexKey: Hashable {
        var process: String
        var index: Int
    }
}
