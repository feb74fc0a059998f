import HealthManager
import PlatformModels
import Testing

/// Where the decider places new instances: the placement rule (PlatformRulesTests) fed with the
/// health manager's view, which is what these check: live agents only, every listed instance's
/// room, the agents' reports, the spread of what stays, and the reasons in `unplaced`.
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

    @Test func whenNothingFitsTheIndexStaysUnplaced() {
        let agents = [agent("a", memory: 1024, heartbeat: now)]
        #expect(places([process("p", instances: 3, memory: 512)], agents: agents) == [
            .place(process: "p", index: 0, agent: "a"),
            .place(process: "p", index: 1, agent: "a"),
            .unplaced(process: "p", index: 2, reason: "insufficient resources"),
        ])
    }

    // Capacity limits are the rule's own; the reports are the health manager's to pass on.
    @Test(arguments: [
        ("reported memory", agent("a", available: AgentCapacity(memoryMB: 100, diskMB: 16384, instances: 50), heartbeat: 1_000_000)),
        ("reported slots", agent("a", available: AgentCapacity(memoryMB: 4096, diskMB: 16384, instances: 0), heartbeat: 1_000_000)),
    ])
    func theAgentsReportsCapTheirRoom(limit: String, agent: AgentState) {
        #expect(places([process("p", instances: 1, memory: 512, disk: 1024)], agents: [agent])
            == [.unplaced(process: "p", index: 0, reason: "insufficient resources")], "\(limit)")
    }

    @Test func roomTakenByOtherInstancesIsNotOffered() {
        let agents = [agent("a", memory: 1024, heartbeat: now)]
        let load = [instance("x", of: "other", index: 0, on: "a", since: now - 60, memory: 768)]
        #expect(places([process("other", instances: 1), process("p", instances: 1, memory: 512)], agents: agents, instances: load)
            == [.unplaced(process: "p", index: 0, reason: "insufficient resources")])
    }

    @Test func aStackNoAgentHasIsReported() {
        let agents = [agent("a", stacks: ["other"], heartbeat: now)]
        #expect(places([process("p", instances: 1, stack: "cflinuxfs4")], agents: agents)
            == [.unplaced(process: "p", index: 0, reason: "no agent with stack cflinuxfs4")])
    }

    @Test func noAgentsAtAllMeansInsufficientResources() {
        #expect(places([process("p", instances: 1)], agents: []) == [.unplaced(process: "p", index: 0, reason: "insufficient resources")])
    }

    @Test func aStoppingInstanceHoldsRoomButDoesNotCountForTheSpread() {
        // a holds a STOPPING instance of p (so its room is 512 - 256); b is half full of another
        // process. For the spread a has none of p (else index 0 would go to b), and its share
        // (1/2) ties with b's: a by id.
        let agents = [agent("a", memory: 512, heartbeat: now), agent("b", memory: 512, heartbeat: now)]
        let load = [
            instance("leaving", of: "p", index: 3, on: "a", .stopping, since: now - 1),
            instance("y", of: "other", index: 0, on: "b", since: now - 60),
        ]
        #expect(places([process("other", instances: 1), process("p", instances: 2)], agents: agents, instances: load) == [
            .place(process: "p", index: 0, agent: "a"),
            .place(process: "p", index: 1, agent: "b"),
        ])
    }

    @Test func anAgentOfUnknownCapacityIsNotChosenWhateverItReports() {
        let agents = [
            agent("a-unknown", memory: 0, available: AgentCapacity(memoryMB: 4096, diskMB: 16384, instances: 50), heartbeat: now),
            agent("b-half", memory: 4096, heartbeat: now),
        ]
        let load = [instance("y", of: "other", index: 0, on: "b-half", since: now - 60, memory: 2048)]
        #expect(places([process("other", instances: 1), process("p", instances: 1)], agents: agents, instances: load)
            == [.place(process: "p", index: 0, agent: "b-half")])
    }

    @Test func aLostAgentIsNeverChosen() {
        let agents = [agent("lost", heartbeat: now - 11), agent("b", memory: 256, heartbeat: now)]
        #expect(places([process("p", instances: 2)], agents: agents) == [
            .place(process: "p", index: 0, agent: "b"),
            .unplaced(process: "p", index: 1, reason: "insufficient resources"),
        ])
    }
}
