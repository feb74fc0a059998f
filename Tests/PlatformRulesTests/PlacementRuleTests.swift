import PlatformRules
import Testing

/// The placement rule on its own: candidates, spread, least loaded, room, failures.
@Suite struct PlacementRuleTests {
    typealias Resources = PlacementRule.Resources

    static func agent(_ id: String, memory: Int = 4096, disk: Int = 16384, slots: Int = 50, listed: Resources = .zero,
                      reported: Resources? = nil, stacks: [String] = ["cflinuxfs4"], accepting: Bool = true,
                      spread: [String: Int] = [:]) -> PlacementRule.Agent {
        PlacementRule.Agent(id: id, stacks: stacks, accepting: accepting,
                            capacity: Resources(memoryMB: memory, diskMB: disk, instances: slots), listed: listed,
                            reportedFree: reported, instancesPerProcess: spread)
    }

    static func request(_ process: String = "p", memory: Int = 256, disk: Int = 1024, stack: String? = "cflinuxfs4") -> PlacementRule.Request {
        PlacementRule.Request(processGuid: process, memoryMB: memory, diskMB: disk, stack: stack)
    }

    /// Where `count` instances of `request` go, one after the other; nil where nothing fits.
    static func places(_ count: Int, _ request: PlacementRule.Request = request(), on agents: [PlacementRule.Agent]) -> [String?] {
        var rule = PlacementRule(agents: agents)
        return (0..<count).map { _ in try? rule.place(request).get() }
    }

    static func used(memory: Int, instances: Int = 1) -> Resources {
        Resources(memoryMB: memory, diskMB: 1024 * instances, instances: instances)
    }

    // MARK: Spread, then least loaded, then id

    @Test func instancesOfOneProcessSpreadAcrossAgents() {
        #expect(Self.places(4, on: ["c", "a", "b"].map { Self.agent($0) }) == ["a", "b", "c", "a"])
    }

    @Test func spreadCountsInstancesTheAgentAlreadyHas() {
        let agents = [Self.agent("a", listed: Self.used(memory: 256), spread: ["p": 1]), Self.agent("b")]
        #expect(Self.places(1, on: agents) == ["b"])
    }

    @Test func spreadIsPerProcess() {
        // a runs another process's instance: p's spread is even, so a still wins on id.
        let agents = [Self.agent("a", spread: ["other": 1]), Self.agent("b")]
        #expect(Self.places(1, on: agents) == ["a"])
    }

    @Test func spreadComesBeforeLoad() {
        // b is nearly empty but already has one of p; a is fuller and has none.
        let agents = [Self.agent("a", listed: Self.used(memory: 3072, instances: 3)),
                      Self.agent("b", listed: Self.used(memory: 256), spread: ["p": 1])]
        #expect(Self.places(1, on: agents) == ["a"])
    }

    @Test func theLeastLoadedShareWinsNotTheMostFreeMemory() {
        // b has the most free memory (2 GB against a's 1 GB) but is fuller: 6 of 8 GB in use,
        // against 1 of 2 GB on a.
        let agents = [Self.agent("a", memory: 2048, listed: Self.used(memory: 1024)),
                      Self.agent("b", memory: 8192, listed: Self.used(memory: 6144))]
        #expect(Self.places(1, on: agents) == ["a"])
    }

    @Test func placingTakesRoomSoTheLoadMoves() {
        // a (both empty, by id); b (none of p yet); b (one each, and 1/3 in use against 1/2);
        // a (fewer of p); b (a is full); then both are.
        let agents = [Self.agent("a", memory: 1024), Self.agent("b", memory: 1536)]
        #expect(Self.places(6, Self.request(memory: 512), on: agents) == ["a", "b", "b", "a", "b", nil])
    }

    @Test func aFullTieGoesToTheLowestID() {
        #expect(Self.places(1, on: [Self.agent("b"), Self.agent("a"), Self.agent("c")]) == ["a"])
    }

    @Test func theInputOrderDoesNotMatter() {
        let agents = [Self.agent("a", memory: 2048), Self.agent("b", memory: 3072, listed: Self.used(memory: 512)),
                      Self.agent("c", memory: 1024)]
        let expected = Self.places(8, on: agents)
        #expect(Self.places(8, on: agents.reversed()) == expected)
        #expect(Self.places(8, on: [agents[1], agents[2], agents[0]]) == expected)
    }

    // MARK: Unknown capacity (the controller counted it as empty, the health manager as full)

    @Test func anAgentOfUnknownCapacityHasNoRoomWhateverItReports() {
        let agents = [Self.agent("a-unknown", memory: 0, reported: Resources(memoryMB: 4096, diskMB: 16384, instances: 50)),
                      Self.agent("b-half", memory: 4096, listed: Self.used(memory: 2048))]
        #expect(Self.places(1, on: agents) == ["b-half"])
        #expect(Self.places(1, on: [agents[0]]) == [nil])
    }

    @Test func anAgentOfUnknownCapacityCountsAsFullForTheShare() {
        // Nothing here needs memory, so both fit; b's known half load beats an unknown one.
        let agents = [Self.agent("a-unknown", memory: 0), Self.agent("b-half", memory: 4096, listed: Self.used(memory: 2048))]
        #expect(Self.places(1, Self.request(memory: 0), on: agents) == ["b-half"])
    }

    // MARK: Room

    @Test(arguments: [
        ("memory", PlacementRuleTests.agent("a", memory: 511)),
        ("disk", PlacementRuleTests.agent("a", disk: 1023)),
        ("slots", PlacementRuleTests.agent("a", slots: 0)),
        ("listed memory", PlacementRuleTests.agent("a", memory: 1024, listed: Resources(memoryMB: 513, diskMB: 0, instances: 1))),
        ("listed disk", PlacementRuleTests.agent("a", disk: 2048, listed: Resources(memoryMB: 0, diskMB: 1025, instances: 1))),
        ("listed slots", PlacementRuleTests.agent("a", slots: 2, listed: Resources(memoryMB: 0, diskMB: 0, instances: 2))),
        ("reported memory", PlacementRuleTests.agent("a", reported: Resources(memoryMB: 511, diskMB: 16384, instances: 50))),
        ("reported disk", PlacementRuleTests.agent("a", reported: Resources(memoryMB: 4096, diskMB: 1023, instances: 50))),
        ("reported slots", PlacementRuleTests.agent("a", reported: Resources(memoryMB: 4096, diskMB: 16384, instances: 0))),
        ("over-committed", PlacementRuleTests.agent("a", memory: 1024, listed: Resources(memoryMB: 2048, diskMB: 0, instances: 1))),
    ])
    func everyLimitIsRespected(limit: String, agent: PlacementRule.Agent) {
        var rule = PlacementRule(agents: [agent])
        #expect(rule.place(Self.request(memory: 512, disk: 1024)) == .failure(.insufficientResources), "\(limit)")
    }

    @Test func anExactFitIsPlacedAndLeavesNothing() {
        var rule = PlacementRule(agents: [Self.agent("a", memory: 1024, disk: 2048, slots: 2,
                                                     listed: Resources(memoryMB: 512, diskMB: 1024, instances: 1))])
        #expect(rule.place(Self.request(memory: 512, disk: 1024)) == .success("a"))
        #expect(rule.room(of: "a") == .zero)
        #expect(rule.place(Self.request(memory: 1, disk: 1)) == .failure(.insufficientResources))
    }

    @Test func theRoomIsTheSmallerOfListingAndReport() {
        let agent = Self.agent("a", memory: 4096, disk: 16384, slots: 50, listed: Resources(memoryMB: 1024, diskMB: 8192, instances: 4),
                               reported: Resources(memoryMB: 2048, diskMB: 10000, instances: 40))
        #expect(agent.room == Resources(memoryMB: 2048, diskMB: 8192, instances: 40))
        #expect(Self.agent("a", memory: 4096, listed: Self.used(memory: 1024)).room.memoryMB == 3072, "no report: the listing alone")
    }

    // MARK: Candidates and failures

    @Test func agentsThatDoNotAcceptAreNeverChosen() {
        let agents = [Self.agent("a-lost-or-draining", memory: 65536, accepting: false), Self.agent("b", memory: 256)]
        #expect(Self.places(2, on: agents) == ["b", nil])
    }

    @Test func onlyAgentsWithTheStackAreUsed() {
        let agents = [Self.agent("a", stacks: ["other"]), Self.agent("b", memory: 512, stacks: ["other", "cflinuxfs4"])]
        #expect(Self.places(3, on: agents) == ["b", "b", nil])
    }

    @Test func aProcessWithoutAStackRunsAnywhere() {
        #expect(Self.places(1, Self.request(stack: nil), on: [Self.agent("a", stacks: [])]) == ["a"])
    }

    @Test func aStackNoAcceptingAgentHasIsReported() {
        var rule = PlacementRule(agents: [Self.agent("a", stacks: ["other"]), Self.agent("b", accepting: false)])
        #expect(rule.place(Self.request(stack: "cflinuxfs4")) == .failure(.noAgentWithStack("cflinuxfs4")))
        #expect(PlacementRule.Failure.noAgentWithStack("cflinuxfs4").text == "no agent with stack cflinuxfs4")
    }

    @Test func withTheStackButNoRoomItIsInsufficientResources() {
        var rule = PlacementRule(agents: [Self.agent("a", memory: 128), Self.agent("b", stacks: ["other"])])
        #expect(rule.place(Self.request()) == .failure(.insufficientResources))
        #expect(PlacementRule.Failure.insufficientResources.text == "insufficient resources")
    }

    @Test func noAcceptingAgentAtAllIsInsufficientResources() {
        var none = PlacementRule(agents: [])
        #expect(none.place(Self.request()) == .failure(.insufficientResources))
        var draining = PlacementRule(agents: [Self.agent("a", stacks: ["other"], accepting: false)])
        #expect(draining.place(Self.request()) == .failure(.insufficientResources))
    }

    @Test func ofTwoEntriesForOneAgentTheFirstCounts() {
        let rule = PlacementRule(agents: [Self.agent("a", memory: 1024), Self.agent("a", memory: 8192)])
        #expect(rule.room(of: "a")?.memoryMB == 1024)
        #expect(rule.room(of: "nobody") == nil)
    }
}
