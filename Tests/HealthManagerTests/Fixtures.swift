import HealthManager
import PlatformModels

/// A clock tests move by hand; the decider only ever sees its `now`.
struct ManualClock {
    var now: Double = 1_000_000
    mutating func advance(by seconds: Double) { now += seconds }
}

func agent(_ id: String, memory: Int = 4096, disk: Int = 16384, slots: Int = 50, available: AgentCapacity? = nil,
           stacks: [String] = ["cflinuxfs4"], heartbeat: Double, draining: Bool = false) -> AgentState {
    AgentState(id: id, capacity: AgentCapacity(memoryMB: memory, diskMB: disk, instances: slots), available: available,
               stacks: stacks, lastHeartbeat: heartbeat, draining: draining)
}

func process(_ guid: String, instances: Int, memory: Int = 256, disk: Int = 1024, stack: String? = "cflinuxfs4",
             state: DesiredAppState = .started) -> DesiredProcess {
    DesiredProcess(guid: guid, appGuid: "app-\(guid)", state: state, instances: instances, memoryMB: memory, diskMB: disk, stack: stack)
}

func instance(_ guid: String, of process: String, index: Int, on agent: String, _ state: InstanceState = .running,
              crashes: Int = 0, lastCrash: Double? = nil, since: Double, memory: Int = 256, disk: Int = 1024) -> ActualInstance {
    ActualInstance(guid: guid, processGuid: process, index: index, agentID: agent, state: state, crashCount: crashes,
                   lastCrash: lastCrash, since: since, memoryMB: memory, diskMB: disk)
}

func fresh(_ processes: [DesiredProcess], at now: Double) -> DesiredState {
    DesiredState(processes: processes, isFresh: true, asOf: now)
}
