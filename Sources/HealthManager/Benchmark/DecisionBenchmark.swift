import Foundation
import PlatformModels

/// `ops/bench/health` (part A): how long one decision pass of ``Decider`` takes over a large,
/// mostly converged platform.
///
/// The synthetic platform has `apps` started apps of `instancesPerApp` instances each, spread
/// round-robin over `agents` agents, plus a realistic sprinkle of work:
/// - about 1 % of instances CRASHED: two thirds due for restart, the rest still backing off;
/// - about 1 % RUNNING with a crash count and up long enough for the count to be reset;
/// - every 97th app misses its last index (an instance never came up);
/// - every 101st app has one instance above its desired count (it was just scaled down);
/// - every 50th app is stopped, and holds no instance any more;
/// - the first agent has stopped heartbeating (lost): its instances are placed elsewhere;
/// - the second agent is draining: half of its instances already have a RUNNING replacement
///   on another agent (they stop), the other half get one placed;
/// - a few instances STARTING, as right after a deploy.
/// The state is built once and every pass decides on it at the same instant, as the health
/// manager's loop would between two changes.
public enum DecisionBenchmark {
    /// What the synthetic platform holds that needs work.
    public struct Scenario: Sendable, Codable, Equatable {
        public var desiredInstances = 0
        public var actualInstances = 0
        public var crashedDue = 0
        public var crashedBackingOff = 0
        public var crashCountsToReset = 0
        public var missingIndexes = 0
        public var scaledDownExtras = 0
        public var onLostAgent = 0
        public var onDrainingAgent = 0
        public var drainingWithReplacement = 0
        public var starting = 0
    }

    /// Decisions of one pass, by kind.
    public struct DecisionCounts: Sendable, Codable, Equatable {
        public var place = 0
        public var unplaced = 0
        public var restart = 0
        public var resetCrashCount = 0
        public var stop = 0
        /// Stops by ``StopReason`` raw value.
        public var stopReasons: [String: Int] = [:]
        /// Total decisions.
        public var total = 0

        init(_ plan: Plan) {
            for decision in plan.decisions {
                total += 1
                switch decision {
                case .place: place += 1
                case .unplaced: unplaced += 1
                case .restart: restart += 1
                case .resetCrashCount: resetCrashCount += 1
                case .stop(_, _, _, _, let reason):
                    stop += 1
                    stopReasons[reason.rawValue, default: 0] += 1
                }
            }
        }
    }

    public struct Report: Sendable, Codable {
        public var apps: Int
        public var instancesPerApp: Int
        public var agents: Int
        public var passes: Int
        public var scenario: Scenario
        public var decisions: DecisionCounts
        /// Milliseconds per `decide` call.
        public var p50Millis: Double
        public var p99Millis: Double
        public var maxMillis: Double
        public var meanMillis: Double

        /// A few lines for people: the platform, the work found and the timings.
        public var text: String {
            var lines: [String] = []
            lines.append("decision pass over \(apps) apps x \(instancesPerApp) instances on \(agents) agents, \(passes) passes")
            lines.append("  state: \(scenario.desiredInstances) desired, \(scenario.actualInstances) actual instances; "
                         + "\(scenario.crashedDue) crashed due + \(scenario.crashedBackingOff) backing off, "
                         + "\(scenario.missingIndexes) missing, \(scenario.scaledDownExtras) extra, "
                         + "\(scenario.onLostAgent) on a lost agent, \(scenario.onDrainingAgent) on a draining agent "
                         + "(\(scenario.drainingWithReplacement) replaced), \(scenario.starting) starting")
            let reasons = decisions.stopReasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            lines.append("  decisions per pass: \(decisions.total) (place \(decisions.place), unplaced \(decisions.unplaced), "
                         + "restart \(decisions.restart), reset crash count \(decisions.resetCrashCount), "
                         + "stop \(decisions.stop)\(reasons.isEmpty ? "" : ": " + reasons))")
            lines.append(String(format: "  decide(): p50 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms",
                                p50Millis, p99Millis, maxMillis, meanMillis))
            return lines.joined(separator: "\n")
        }
    }

    /// Percentile (nearest rank) of `values`, in the values' unit.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[max(0, min(sorted.count - 1, rank))]
    }

    /// Builds the platform, runs one untimed warm-up pass, then times `passes` passes.
    public static func run(apps: Int = 1000, instancesPerApp: Int = 3, agents: Int = 20, passes: Int = 200) -> Report {
        let apps = max(1, apps), instancesPerApp = max(1, instancesPerApp), agents = max(3, agents), passes = max(1, passes)
        let now: Double = 1_800_000_000
        let (desired, actual, scenario) = makeState(apps: apps, instancesPerApp: instancesPerApp, agents: agents, now: now)
        let decider = Decider()

        let first = decider.decide(desired: desired, actual: actual, now: now)
        let clock = ContinuousClock()
        var millis: [Double] = []
        millis.reserveCapacity(passes)
        var checksum = 0
        for _ in 0..<passes {
            let start = clock.now
            let plan = decider.decide(desired: desired, actual: actual, now: now)
            let elapsed = start.duration(to: clock.now)
            checksum &+= plan.decisions.count
            let parts = elapsed.components
            millis.append(Double(parts.seconds) * 1000 + Double(parts.attoseconds) / 1e15)
        }
        // Every pass decides the same: a differing count would mean the decider is not pure.
        precondition(checksum == first.decisions.count * passes, "decision passes over one state disagree")

        return Report(
            apps: apps, instancesPerApp: instancesPerApp, agents: agents, passes: passes,
            scenario: scenario, decisions: DecisionCounts(first),
            p50Millis: percentile(millis, 50), p99Millis: percentile(millis, 99),
            maxMillis: millis.max() ?? .nan, meanMillis: millis.reduce(0, +) / Double(millis.count))
    }

    /// A small deterministic generator, so every run builds the same platform.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        /// True with probability `percent` / 100.
        mutating func chance(_ percent: Double) -> Bool { Double(next() % 10_000) < percent * 100 }
    }

    static func makeState(apps: Int, instancesPerApp: Int, agents agentCount: Int, now: Double)
        -> (DesiredState, ActualState, Scenario) {
        var random = Generator(state: 0x6865_616C_7468)
        var scenario = Scenario()
        let memory = 256, disk = 1024
        let agentIDs = (0..<agentCount).map { String(format: "agent-%03d", $0) }
        let lostAgent = agentIDs[0], drainingAgent = agentIDs[1]
        // Room for every instance twice over, so placement is never the bottleneck of the state.
        let perAgent = (apps * (instancesPerApp + 1) * 2) / agentCount + 10
        let agents = agentIDs.map { id in
            AgentState(id: id, capacity: AgentCapacity(memoryMB: perAgent * memory, diskMB: perAgent * disk, instances: perAgent),
                       stacks: ["cflike-host"], lastHeartbeat: id == lostAgent ? now - 120 : now - Double(random.next() % 5),
                       draining: id == drainingAgent)
        }

        var processes: [DesiredProcess] = []
        var instances: [ActualInstance] = []
        var slot = 0
        func nextAgent() -> String {
            defer { slot += 1 }
            return agentIDs[slot % agentCount]
        }
        /// Another agent that is alive and not draining, for replacements.
        func healthyAgent(besides: String) -> String {
            var id = nextAgent()
            while id == besides || id == lostAgent || id == drainingAgent { id = nextAgent() }
            return id
        }

        for app in 0..<apps {
            let guid = String(format: "process-%06d", app)
            let stopped = app % 50 == 49
            processes.append(DesiredProcess(guid: guid, appGuid: "app-\(guid)", state: stopped ? .stopped : .started,
                                            instances: instancesPerApp, memoryMB: memory, diskMB: disk, stack: "cflike-host"))
            guard !stopped else { continue }
            scenario.desiredInstances += instancesPerApp
            let missingLast = app % 97 == 13
            for index in 0..<instancesPerApp {
                if missingLast && index == instancesPerApp - 1 {
                    scenario.missingIndexes += 1
                    continue
                }
                let agentID = nextAgent()
                var item = ActualInstance(guid: "\(guid)-\(index)-a", processGuid: guid, index: index, agentID: agentID,
                                          state: .running, since: now - 3600 - Double(random.next() % 86_400),
                                          memoryMB: memory, diskMB: disk)
                if agentID == lostAgent {
                    scenario.onLostAgent += 1
                } else if agentID == drainingAgent {
                    scenario.onDrainingAgent += 1
                    if random.chance(50) {
                        scenario.drainingWithReplacement += 1
                        instances.append(ActualInstance(guid: "\(guid)-\(index)-r", processGuid: guid, index: index,
                                                        agentID: healthyAgent(besides: agentID), state: .running,
                                                        since: now - 20, memoryMB: memory, diskMB: disk))
                    }
                } else if random.chance(1) {
                    item.state = .crashed
                    if random.chance(66) {
                        item.crashCount = 1 + Int(random.next() % 3)  // restarted at once
                        item.lastCrash = now - 1
                        scenario.crashedDue += 1
                    } else {
                        item.crashCount = 6 + Int(random.next() % 4)  // minutes of back-off left
                        item.lastCrash = now - 5
                        scenario.crashedBackingOff += 1
                    }
                    item.since = item.lastCrash ?? now
                } else if random.chance(1) {
                    item.crashCount = 1 + Int(random.next() % 5)
                    scenario.crashCountsToReset += 1
                } else if random.chance(0.5) {
                    item.state = .starting
                    item.since = now - 2
                    scenario.starting += 1
                }
                instances.append(item)
            }
            if app % 101 == 7 {
                let agentID = healthyAgent(besides: "")
                instances.append(ActualInstance(guid: "\(guid)-\(instancesPerApp)-a", processGuid: guid, index: instancesPerApp,
                                                agentID: agentID, state: .running, since: now - 600, memoryMB: memory, diskMB: disk))
                scenario.scaledDownExtras += 1
            }
        }
        scenario.actualInstances = instances.count
        return (DesiredState(processes: processes, isFresh: true, asOf: now - 1),
                ActualState(agents: agents, instances: instances), scenario)
    }
}
