import PlatformModels
import PlatformRules

/// The health manager's decisions as a pure function of (desired state, actual state, now).
///
/// Per desired process, sorted by guid, and per index in ascending order:
/// - instances on agents that stopped heartbeating for `agentTimeout` seconds (or that are not
///   known at all) are treated as gone: their indexes are placed again elsewhere;
/// - several instances with one index on live agents are duplicates: the RUNNING one is kept
///   (then the one that entered its state last, then the lowest guid), the others stop;
/// - an index without a kept instance is placed (see ``PlatformRules/PlacementRule``), or reported unplaced;
/// - a kept CRASHED instance restarts once its ``CrashBackoff`` wait is over; a RUNNING one up
///   for `resetAfter` gets its crash count reset;
/// - an instance on a draining agent stops only once its index runs RUNNING on another agent,
///   which is placed first;
/// - instances at or above the desired count stop, highest index first, as do instances of
///   stopped apps and of processes no longer desired.
///
/// When desired state is stale (not fresh, or older than `staleAfter`) nothing is stopped or
/// restarted: what runs keeps running; missing instances are still placed.
/// Instances that are STOPPING are already on their way out: they hold room on their agent and
/// nothing else.
public struct Decider: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Seconds without a heartbeat after which an agent's instances are placed elsewhere.
        public var agentTimeout: Double
        /// Seconds after which desired state read at `asOf` no longer counts as fresh.
        public var staleAfter: Double
        public var backoff: CrashBackoff

        public init(agentTimeout: Double = 10, staleAfter: Double = 30, backoff: CrashBackoff = CrashBackoff()) {
            self.agentTimeout = agentTimeout
            self.staleAfter = staleAfter
            self.backoff = backoff
        }
    }

    public var configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// True when decisions may stop or restart instances.
    public func isFresh(_ desired: DesiredState, now: Double) -> Bool {
        guard desired.isFresh, let asOf = desired.asOf else { return false }
        return now - asOf <= configuration.staleAfter
    }

    /// True when `agent` has heartbeated within the timeout.
    public func isAlive(_ agent: AgentState, now: Double) -> Bool {
        now - agent.lastHeartbeat <= configuration.agentTimeout
    }

    public func decide(desired: DesiredState, actual: ActualState, now: Double) -> Plan {
        let fresh = isFresh(desired, now: now)
        let agents = Dictionary(actual.agents.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var placement = PlacementRule(alive: actual.agents.filter { isAlive($0, now: now) }, instances: actual.instances)
        var decisions: [Decision] = []
        var nextRestartAt: Double?

        enum Whereabouts { case live, draining, gone }
        func whereabouts(_ instance: ActualInstance) -> Whereabouts {
            guard let agent = agents[instance.agentID], isAlive(agent, now: now) else { return .gone }
            return agent.draining ? .draining : .live
        }
        func stop(_ instance: ActualInstance, _ reason: StopReason) {
            decisions.append(.stop(instance: instance.guid, process: instance.processGuid, index: instance.index,
                                   agent: instance.agentID, reason: reason))
        }

        // STOPPING instances are leaving and instances on gone agents cannot be reached.
        let reachable = actual.instances
            .filter { $0.state != .stopping && whereabouts($0) != .gone }
            .sorted { ($0.processGuid, $0.index, $0.guid) < ($1.processGuid, $1.index, $1.guid) }
        let byProcess = Dictionary(grouping: reachable, by: \.processGuid)
        let processes = desired.processes.sorted { $0.guid < $1.guid }
        var seen = Set<String>()

        for process in processes where seen.insert(process.guid).inserted {
            let instances = byProcess[process.guid] ?? []
            let target = process.target

            // Extras, highest index first.
            if fresh {
                for instance in instances.filter({ $0.index >= target }).reversed() {
                    stop(instance, process.state == .stopped ? .appStopped : .scaledDown)
                }
            }

            let byIndex = Dictionary(grouping: instances.filter { $0.index < target }, by: \.index)
            for index in 0..<target {
                let here = byIndex[index] ?? []
                let live = here.filter { whereabouts($0) == .live }
                let evacuating = here.filter { whereabouts($0) == .draining }

                let kept = live.max { a, b in
                    let ra = a.state == .running, rb = b.state == .running
                    if ra != rb { return rb }
                    if a.since != b.since { return a.since < b.since }
                    return a.guid > b.guid
                }
                if fresh {
                    for duplicate in live where duplicate.guid != kept?.guid { stop(duplicate, .duplicate) }
                }

                guard let kept else {
                    switch placement.place(process) {
                    case .success(let agent): decisions.append(.place(process: process.guid, index: index, agent: agent))
                    case .failure(let reason): decisions.append(.unplaced(process: process.guid, index: index, reason: reason.text))
                    }
                    continue
                }

                switch kept.state {
                case .crashed:
                    guard let wait = configuration.backoff.delay(afterCrashes: kept.crashCount) else { break }
                    let due = (kept.lastCrash ?? kept.since) + wait
                    if due <= now {
                        if fresh {
                            decisions.append(.restart(instance: kept.guid, process: process.guid, index: index,
                                                      agent: kept.agentID, crashCount: kept.crashCount))
                        }
                    } else {
                        nextRestartAt = min(nextRestartAt ?? due, due)
                    }
                case .running:
                    if kept.crashCount > 0, now - kept.since >= configuration.backoff.resetAfter {
                        decisions.append(.resetCrashCount(instance: kept.guid, process: process.guid, index: index))
                    }
                    if fresh {
                        for old in evacuating { stop(old, .evacuated) }
                    }
                case .starting, .stopping, .down:
                    break
                }
            }
        }

        // Instances of processes nobody wants any more, highest index first.
        if fresh {
            let wanted = Set(processes.map(\.guid))
            let orphans = reachable.filter { !wanted.contains($0.processGuid) }
            for instance in orphans.sorted(by: { ($0.processGuid, $1.index, $0.guid) < ($1.processGuid, $0.index, $1.guid) }) {
                stop(instance, .notDesired)
            }
        }
        return Plan(decisions: decisions, nextRestartAt: nextRestartAt, desiredWasFresh: fresh)
    }
}
