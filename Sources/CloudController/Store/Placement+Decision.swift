import Foundation
import PlatformRules

/// The pure half of ``Placement``: which instances a user's change keeps, removes and creates,
/// and (through ``PlatformRules/PlacementRule``, the rule the health manager applies too) where
/// new ones go.
extension Placement {
    /// A process as placement sees it.
    struct DesiredProcess: Sendable, Equatable {
        var guid: String
        var appGuid: String
        var type: String
        /// The app's stack; nil runs anywhere.
        var stack: String?
        var version: String
        /// The current droplet when the app is STARTED and the droplet STAGED; nil means "run nothing".
        var dropletGuid: String?
        var instances: Int
        var memoryMB: Int
        var diskMB: Int

        var target: Int { dropletGuid == nil ? 0 : max(0, instances) }

        var request: PlacementRule.Request {
            PlacementRule.Request(processGuid: guid, memoryMB: memoryMB, diskMB: diskMB, stack: stack)
        }
    }

    /// An instance that exists (desired placement).
    struct CurrentInstance: Sendable, Equatable {
        var guid: String
        var processGuid: String
        var index: Int
        var agentID: String?
        var processVersion: String
        var dropletGuid: String
        var memoryMB: Int
        var diskMB: Int
    }

    /// An instance to create; `template` names an instance of the same generation whose
    /// assignment it copies (nil: build a fresh one).
    struct NewInstance: Sendable, Equatable {
        var guid: String
        var processGuid: String
        var appGuid: String
        var index: Int
        var agentID: String?
        var template: String?
    }

    /// What to change.
    struct Decision: Sendable, Equatable {
        var deletions: [String] = []
        /// Unplaced instances that now fit somewhere: (instance guid, agent id).
        var placements: [Placed] = []
        var creations: [NewInstance] = []

        var isEmpty: Bool { deletions.isEmpty && placements.isEmpty && creations.isEmpty }
    }

    struct Placed: Sendable, Equatable {
        var instanceGuid: String
        var agentID: String
    }

    /// The decision for `desired` (every process in scope) given the instances of those
    /// processes and every agent. Deterministic for a given `newGuid`.
    ///
    /// `agents` list what every instance on them holds, of any app; `accepting` is false for
    /// lost and draining agents. Instances on `draining` agents are kept (the health manager
    /// moves them, replacements first), but only when no instance of the index runs elsewhere.
    /// Removed instances give their room back at once, so a restart or a new droplet takes the
    /// place of what it replaces.
    static func decide(desired: [DesiredProcess], current: [CurrentInstance], agents: [PlacementRule.Agent],
                       draining: Set<String> = [], newGuid: () -> String = { UUID().uuidString.lowercased() }) -> Decision {
        var byID = Dictionary(agents.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var decision = Decision()
        func remove(_ instance: CurrentInstance) {
            decision.deletions.append(instance.guid)
            guard let agent = instance.agentID, byID[agent] != nil else { return }
            byID[agent]?.listed.memoryMB -= instance.memoryMB
            byID[agent]?.listed.diskMB -= instance.diskMB
            byID[agent]?.listed.instances -= 1
        }

        let processes = desired.sorted { ($0.appGuid, $0.type, $0.guid) < ($1.appGuid, $1.type, $1.guid) }
        let known = Set(processes.map(\.guid))
        for instance in current.sorted(by: { ($0.processGuid, $0.index) < ($1.processGuid, $1.index) })
        where !known.contains(instance.processGuid) {
            remove(instance)
        }

        // First every removal, so the room they free is there for the placements below.
        let byProcess = Dictionary(grouping: current, by: \.processGuid)
        var plans: [(process: DesiredProcess, kept: [Int: CurrentInstance], template: String?)] = []
        for process in processes {
            let (kept, removed, template) = keptAndRemoved(byProcess[process.guid] ?? [], of: process, agents: byID, draining: draining)
            removed.forEach(remove)
            plans.append((process, kept, template))
            // What stays counts towards the spread of the new ones.
            for agent in kept.values.compactMap(\.agentID) { byID[agent]?.instancesPerProcess[process.guid, default: 0] += 1 }
        }

        var rule = PlacementRule(agents: Array(byID.values))
        // The rule's failure reason is not stored: the health manager's next pass records it.
        func agent(for process: DesiredProcess) -> String? { try? rule.place(process.request).get() }
        for (process, kept, template) in plans {
            for index in 0..<process.target {
                if let instance = kept[index] {
                    if instance.agentID == nil, let agent = agent(for: process) {
                        decision.placements.append(Placed(instanceGuid: instance.guid, agentID: agent))
                    }
                } else {
                    decision.creations.append(NewInstance(
                        guid: newGuid(), processGuid: process.guid, appGuid: process.appGuid, index: index,
                        agentID: agent(for: process), template: template))
                }
            }
        }
        return decision
    }

    /// Splits a process's instances into the one kept per index (current generation, below the
    /// target, on a live or draining agent or unplaced; one off a draining agent first) and the
    /// rest; `template` is an instance of the current generation, kept or not.
    private static func keptAndRemoved(_ instances: [CurrentInstance], of process: DesiredProcess, agents: [String: PlacementRule.Agent],
                             draining: Set<String>) -> (kept: [Int: CurrentInstance], removed: [CurrentInstance], template: String?) {
        var kept: [Int: CurrentInstance] = [:]
        var removed: [CurrentInstance] = []
        var template: String?
        func rank(_ i: CurrentInstance) -> Int { i.agentID.map { draining.contains($0) ? 1 : 0 } ?? 0 }
        for instance in instances.sorted(by: { ($0.index, rank($0), $0.guid) < ($1.index, rank($1), $1.guid) }) {
            let sameGeneration = instance.processVersion == process.version && instance.dropletGuid == process.dropletGuid
            if sameGeneration, template == nil { template = instance.guid }
            let onLiveAgent = instance.agentID.map { agents[$0]?.accepting == true || draining.contains($0) } ?? true
            if sameGeneration, onLiveAgent, instance.index < process.target, kept[instance.index] == nil {
                kept[instance.index] = instance
            } else {
                removed.append(instance)
            }
        }
        return (kept, removed, template)
    }
}
