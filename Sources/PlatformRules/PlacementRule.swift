/// The placement rule: which execution agent gets one more instance of a process. The Cloud
/// Controller applies it when a user's change creates instances, the health manager when it
/// places what crashed, was lost or did not fit; both feed it their own view of the agents.
///
/// - Candidates are agents that accept new instances (active: not lost, not draining), have the
///   process's stack (a process without one runs anywhere) and room for its memory, its disk and
///   one more instance.
/// - Among them the one with the fewest instances of the process wins (spread), then the one
///   with the smallest share of its memory capacity in use (least loaded), then the lowest id.
///   Free memory alone is no measure: a big agent can have the most free and still be fuller.
/// - An agent's room is its capacity minus what every instance listed on it holds (instances
///   assigned and not yet reported count too) and, when a report is given, no more than what the
///   agent last reported free (it may still run instances no longer listed).
/// - Unknown capacity: an agent whose memory capacity is 0 has no memory room, and its share in
///   use counts as 1, full. An agent whose load cannot be known must never look emptier than one
///   whose load is known (counting it as 0 would send it every new instance first).
/// - Each placement takes its room and counts towards the spread, so successive calls see it.
///
/// Agents are taken in id order, so the outcome does not depend on the order of the input.
public struct PlacementRule: Sendable {
    /// Memory, disk and instance slots, as capacity, use or room.
    public struct Resources: Sendable, Equatable {
        public var memoryMB: Int
        public var diskMB: Int
        public var instances: Int

        public init(memoryMB: Int, diskMB: Int, instances: Int) {
            self.memoryMB = memoryMB
            self.diskMB = diskMB
            self.instances = instances
        }

        /// Nothing at all.
        public static let zero = Resources(memoryMB: 0, diskMB: 0, instances: 0)
    }

    /// An agent as the caller sees it.
    public struct Agent: Sendable, Equatable {
        public var id: String
        public var stacks: [String]
        /// Takes new instances: active (not lost) and not draining.
        public var accepting: Bool
        /// What it registered with.
        public var capacity: Resources
        /// What every instance listed on it holds, of any process; one slot each.
        public var listed: Resources
        /// What it last reported free; nil: only the listing limits its room.
        public var reportedFree: Resources?
        /// Instances of each process (by guid) that stay on it, for the spread.
        public var instancesPerProcess: [String: Int]

        public init(id: String, stacks: [String], accepting: Bool, capacity: Resources, listed: Resources = .zero,
                    reportedFree: Resources? = nil, instancesPerProcess: [String: Int] = [:]) {
            self.id = id
            self.stacks = stacks
            self.accepting = accepting
            self.capacity = capacity
            self.listed = listed
            self.reportedFree = reportedFree
            self.instancesPerProcess = instancesPerProcess
        }

        /// What one more instance may take: capacity minus the listing, capped by the report.
        public var room: Resources {
            var room = Resources(memoryMB: capacity.memoryMB - listed.memoryMB, diskMB: capacity.diskMB - listed.diskMB,
                                 instances: capacity.instances - listed.instances)
            if let reported = reportedFree {
                room = Resources(memoryMB: min(room.memoryMB, reported.memoryMB), diskMB: min(room.diskMB, reported.diskMB),
                                 instances: min(room.instances, reported.instances))
            }
            return room
        }
    }

    /// One more instance of a process.
    public struct Request: Sendable, Equatable {
        public var processGuid: String
        public var memoryMB: Int
        public var diskMB: Int
        /// The app's stack; nil runs on any agent.
        public var stack: String?

        public init(processGuid: String, memoryMB: Int, diskMB: Int, stack: String?) {
            self.processGuid = processGuid
            self.memoryMB = memoryMB
            self.diskMB = diskMB
            self.stack = stack
        }
    }

    /// Why an instance could not be placed.
    public enum Failure: Error, Sendable, Equatable {
        /// No accepting agent with the stack has room (or there is no accepting agent at all).
        case insufficientResources
        /// Accepting agents exist, but none has the stack.
        case noAgentWithStack(String)

        /// The words shown in process stats.
        public var text: String {
            switch self {
            case .insufficientResources: "insufficient resources"
            case .noAgentWithStack(let stack): "no agent with stack \(stack)"
            }
        }
    }

    /// The agents, in id order; each one's room and spread change as instances are placed.
    private var agents: [Agent]
    private var rooms: [Resources]

    /// `agents`: every agent the caller knows (those not accepting are never chosen). Of two
    /// entries with one id the first counts.
    public init(agents: [Agent]) {
        var seen = Set<String>()
        self.agents = agents.filter { seen.insert($0.id).inserted }.sorted { $0.id < $1.id }
        rooms = self.agents.map(\.room)
    }

    /// The room `agent` has left, nil for an agent it does not know.
    public func room(of agent: String) -> Resources? {
        agents.firstIndex { $0.id == agent }.map { rooms[$0] }
    }

    /// The agent for one more instance of `request.processGuid`, whose room it then takes.
    public mutating func place(_ request: Request) -> Result<String, Failure> {
        let open = agents.indices.filter { agents[$0].accepting }
        let usable = open.filter { i in request.stack.map { agents[i].stacks.contains($0) } ?? true }
        let fitting = usable.filter { i in
            rooms[i].memoryMB >= request.memoryMB && rooms[i].diskMB >= request.diskMB && rooms[i].instances >= 1
        }
        func spread(_ i: Int) -> Int { agents[i].instancesPerProcess[request.processGuid, default: 0] }
        guard let best = fitting.min(by: { a, b in
            if spread(a) != spread(b) { return spread(a) < spread(b) }
            let shareA = memoryInUseShare(a), shareB = memoryInUseShare(b)
            if shareA != shareB { return shareA < shareB }
            return agents[a].id < agents[b].id
        }) else {
            if usable.isEmpty, !open.isEmpty, let stack = request.stack { return .failure(.noAgentWithStack(stack)) }
            return .failure(.insufficientResources)
        }
        rooms[best].memoryMB -= request.memoryMB
        rooms[best].diskMB -= request.diskMB
        rooms[best].instances -= 1
        agents[best].instancesPerProcess[request.processGuid, default: 0] += 1
        return .success(agents[best].id)
    }

    /// The share of agent `i`'s memory in use, room taken by placements included; 1 when its
    /// capacity is unknown (see the type's comment).
    private func memoryInUseShare(_ i: Int) -> Double {
        let capacity = agents[i].capacity.memoryMB
        guard capacity > 0 else { return 1 }
        return 1 - Double(rooms[i].memoryMB) / Double(capacity)
    }
}
