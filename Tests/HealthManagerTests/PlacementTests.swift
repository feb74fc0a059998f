import HealthManager
import PlatformModels
import Testing

/// Where new instances go: spread, room, stacks.
@Suite struct PlacementTests {
    let decider = Decider()
    let now = ManualClock().now

    func places(_ processes: [DesiredProcess], agents: [AgentState], instances: [ActualInstance] = []) -> [Decision] {
        decider.decide(desired: fresh(processes, at: now), actual: ActualState(agents: agents, instances: instances), now: now).decisions
    }

    @Test func instancesOfOneProcessSpreadAcrossAgents() {
        let agents = ["a", "b", "c"].map { agent($0, heartbeat: now) }
        #expect(places([process("p", instances: 4)], agents: agents) == [
            .place(process: "p", index: 0, agent: "a"),
            .place(process: "p", index: 1, agent: "b"),
            .place(process: "p", index: 2, agent: "c"),
            .place(process: "p", index: 3, agent: "a"),
        ])
    }

    @Test func spreadCountsInstancesAlreadyRunning() {
        let agents = ["a", "b"].map { agent($0, heartbeat: now) }
        let running = [instance("i0", of: "p", index: 0, on: "a", since: now - 60)]
        #expect(places([process("p", instances: 2)], agents: agents, instances: running) == [.place(process: "p", index: 1, agent: "b")])
    }

    @Test func theLeastLoadedAgentIsPreferred() {
        // b is bigger but fuller: 3 GB of 4 GB in use, against 1 GB of 2 GB on a.
        let agents = [agent("a", memory: 2048, heartbeat: now), agent("b", memory: 4096, heartbeat: now)]
        let load = [
            instance("x", of: "other", index: 0, on: "a", since: now - 60, memory: 1024),
            instance("y", of: "other", index: 1, on: "b", since: now - 60, memory: 3072),
        ]
        #expect(places([process("other", instances: 2), process("p", instances: 1)], agents: agents, instances: load)
            == [.place(process: "p", index: 0, agent: "a")])
    }

    @Test func whenNothingFitsTheIndexStaysUnplaced() {
        let agents = [agent("a", memory: 1024, heartbeat: now)]
        #expect(places([process("p", instances: 3, memory: 512)], agents: agents) == [
            .place(process: "p", index: 0, agent: "a"),
            .place(process: "p", index: 1, agent: "a"),
            .unplaced(process: "p", index: 2, reason: "insufficient resources"),
        ])
    }

    @Test(arguments: [
        ("memory", agent("a", memory: 511, heartbeat: 1_000_000)),
        ("disk", agent("a", disk: 1023, heartbeat: 1_000_000)),
        ("slots", agent("a", slots: 0, heartbeat: 1_000_000)),
        ("reported memory", agent("a", available: AgentCapacity(memoryMB: 100, diskMB: 16384, instances: 50), heartbeat: 1_000_000)),
        ("reported slots", agent("a", available: AgentCapacity(memoryMB: 4096, diskMB: 16384, instances: 0), heartbeat: 1_000_000)),
    ])
    func everyLimitIsRespected(limit: String, agent: AgentState) {
        #expect(places([process("p", instances: 1, memory: 512, disk: 1024)], agents: [agent])
            == [.unplaced(process: "p", index: 0, reason: "insufficient resources")], "\(limit)")
    }

    @Test func anExactFitIsPlaced() {
        #expect(places([process("p", instances: 1, memory: 512, disk: 1024)], agents: [agent("a", memory: 512, disk: 1024, slots: 1, heartbeat: now)])
            == [.place(process: "p", index: 0, agent: "a")])
    }

    @Test func roomTakenByOtherInstancesIsNotOffered() {
        let agents = [agent("a", memory: 1024, heartbeat: now)]
        let load = [instance("x", of: "other", index: 0, on: "a", since: now - 60, memory: 768)]
        #expect(places([process("other", instances: 1), process("p", instances: 1, memory: 512)], agents: agents, instances: load)
            == [.unplaced(process: "p", index: 0, reason: "insufficient resources")])
    }

    @Test func onlyAgentsWithTheStackAreUsed() {
        let agents = [
            agent("a", stacks: ["other"], heartbeat: now),
            agent("b", memory: 1024, stacks: ["other", "cflinuxfs4"], heartbeat: now),
        ]
        #expect(places([process("p", instances: 2, memory: 512)], agents: agents) == [
            .place(process: "p", index: 0, agent: "b"),
            .place(process: "p", index: 1, agent: "b"),
        ])
    }

    @Test func aStackNoAgentHasIsReported() {
        let agents = [agent("a", stacks: ["other"], heartbeat: now)]
        #expect(places([process("p", instances: 1, stack: "cflinuxfs4")], agents: agents)
            == [.unplaced(process: "p", index: 0, reason: "no agent with stack cflinuxfs4")])
    }

    @Test func aProcessWithoutAStackRunsAnywhere() {
        let agents = [agent("a", stacks: [], heartbeat: now)]
        #expect(places([process("p", instances: 1, stack: nil)], agents: agents) == [.place(process: "p", index: 0, agent: "a")])
    }

    @Test func noAgentsAtAllMeansInsufficientResources() {
        #expect(places([process("p", instances: 1)], agents: []) == [.unplaced(process: "p", index: 0, reason: "insufficient resources")])
    }

    @Test func aLostAgentIsNeverChosen() {
        let agents = [agent("lost", heartbeat: now - 11), agent("b", memory: 256, heartbeat: now)]
        #expect(places([process("p", instances: 2)], agents: agents) == [
            .place(process: "p", index: 0, agent: "b"),
            .unplaced(process: "p", index: 1, reason: "insufficient resources"),
        ])
    }
}
