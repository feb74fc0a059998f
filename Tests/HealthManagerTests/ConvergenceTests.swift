import HealthManager
import PlatformModels
import Testing

/// Lost and draining agents, duplicates, scaling and stopping.
@Suite struct ConvergenceTests {
    let decider = Decider()

    @Test func missingInstancesArePlaced() {
        let now = ManualClock().now
        let actual = ActualState(agents: [agent("a", heartbeat: now)],
                                 instances: [instance("i1", of: "p", index: 1, on: "a", since: now - 60)])
        #expect(decider.decide(desired: fresh([process("p", instances: 3)], at: now), actual: actual, now: now).decisions
            == [.place(process: "p", index: 0, agent: "a"), .place(process: "p", index: 2, agent: "a")])
    }

    // MARK: Lost agents

    func lostAgentPlan(silentFor seconds: Double, decider: Decider) -> Plan {
        var clock = ManualClock()
        let lastHeard = clock.now
        clock.advance(by: seconds)
        let actual = ActualState(
            agents: [agent("a", heartbeat: lastHeard), agent("b", heartbeat: clock.now)],
            instances: [
                instance("a0", of: "p", index: 0, on: "a", since: lastHeard - 600),
                instance("b1", of: "p", index: 1, on: "b", since: lastHeard - 600),
            ])
        return decider.decide(desired: fresh([process("p", instances: 2)], at: clock.now), actual: actual, now: clock.now)
    }

    @Test func aSilentAgentKeepsItsInstancesUntilTheTimeout() {
        #expect(lostAgentPlan(silentFor: 5, decider: decider).decisions == [])
        #expect(lostAgentPlan(silentFor: 10, decider: decider).decisions == [])
    }

    @Test func instancesOfALostAgentArePlacedElsewhereAfterTheTimeout() {
        // Never stopped (the agent cannot be reached); a duplicate is reconciled if it returns.
        #expect(lostAgentPlan(silentFor: 10.5, decider: decider).decisions == [.place(process: "p", index: 0, agent: "b")])
    }

    @Test func theAgentTimeoutIsConfigurable() {
        let patient = Decider(configuration: .init(agentTimeout: 30))
        #expect(lostAgentPlan(silentFor: 20, decider: patient).decisions == [])
        #expect(lostAgentPlan(silentFor: 31, decider: patient).decisions == [.place(process: "p", index: 0, agent: "b")])
    }

    @Test func anInstanceOnAnUnknownAgentIsPlacedAgain() {
        let now = ManualClock().now
        let actual = ActualState(agents: [agent("b", heartbeat: now)],
                                 instances: [instance("x0", of: "p", index: 0, on: "gone", since: now - 60)])
        #expect(decider.decide(desired: fresh([process("p", instances: 1)], at: now), actual: actual, now: now).decisions
            == [.place(process: "p", index: 0, agent: "b")])
    }

    // MARK: Evacuation

    @Test func aDrainingAgentIsEvacuatedReplacementFirst() {
        var clock = ManualClock()
        let desired = [process("p", instances: 1)]
        let old = instance("old", of: "p", index: 0, on: "a", since: clock.now - 600)
        func actual(_ extra: [ActualInstance]) -> ActualState {
            ActualState(agents: [agent("a", heartbeat: clock.now, draining: true), agent("b", heartbeat: clock.now)],
                        instances: [old] + extra)
        }

        // 1. The replacement is placed; the old instance keeps serving.
        #expect(decider.decide(desired: fresh(desired, at: clock.now), actual: actual([]), now: clock.now).decisions
            == [.place(process: "p", index: 0, agent: "b")])

        // 2. The replacement is starting: nothing stops yet, nothing is placed twice.
        clock.advance(by: 2)
        let starting = instance("new", of: "p", index: 0, on: "b", .starting, since: clock.now)
        #expect(decider.decide(desired: fresh(desired, at: clock.now), actual: actual([starting]), now: clock.now).decisions == [])

        // 3. A crashed replacement does not release the old one either.
        clock.advance(by: 2)
        var crashed = starting
        crashed.state = .crashed
        crashed.crashCount = 4
        crashed.since = clock.now
        #expect(decider.decide(desired: fresh(desired, at: clock.now), actual: actual([crashed]), now: clock.now).decisions == [])

        // 4. The replacement runs: now the old one stops.
        clock.advance(by: 2)
        var running = starting
        running.state = .running
        running.since = clock.now
        #expect(decider.decide(desired: fresh(desired, at: clock.now), actual: actual([running]), now: clock.now).decisions
            == [.stop(instance: "old", process: "p", index: 0, agent: "a", reason: .evacuated)])
    }

    @Test func nothingIsPlacedOnADrainingAgent() {
        let now = ManualClock().now
        let actual = ActualState(agents: [agent("a", heartbeat: now, draining: true)], instances: [])
        #expect(decider.decide(desired: fresh([process("p", instances: 1)], at: now), actual: actual, now: now).decisions
            == [.unplaced(process: "p", index: 0, reason: "insufficient resources")])
    }

    // MARK: Duplicates

    @Test func duplicatesKeepTheRunningOne() {
        let now = ManualClock().now
        let actual = ActualState(
            agents: [agent("a", heartbeat: now), agent("b", heartbeat: now)],
            instances: [
                instance("run", of: "p", index: 0, on: "a", .running, since: now - 600),
                instance("crash", of: "p", index: 0, on: "b", .crashed, crashes: 1, since: now - 1),
                instance("start", of: "p", index: 0, on: "b", .starting, since: now),
            ])
        #expect(decider.decide(desired: fresh([process("p", instances: 1)], at: now), actual: actual, now: now).decisions == [
            .stop(instance: "crash", process: "p", index: 0, agent: "b", reason: .duplicate),
            .stop(instance: "start", process: "p", index: 0, agent: "b", reason: .duplicate),
        ])
    }

    @Test func anAgentComingBackLosesItsOlderDuplicate() {
        // Agent a was presumed lost, its index 0 was placed on b; now a heartbeats again.
        let now = ManualClock().now
        let actual = ActualState(
            agents: [agent("a", heartbeat: now), agent("b", heartbeat: now)],
            instances: [
                instance("stale", of: "p", index: 0, on: "a", .running, since: now - 900),
                instance("replacement", of: "p", index: 0, on: "b", .running, since: now - 60),
                instance("other", of: "p", index: 1, on: "a", .running, since: now - 900),
            ])
        #expect(decider.decide(desired: fresh([process("p", instances: 2)], at: now), actual: actual, now: now).decisions
            == [.stop(instance: "stale", process: "p", index: 0, agent: "a", reason: .duplicate)])
    }

    @Test func duplicatesOfEqualAgeAreSettledByGuid() {
        let now = ManualClock().now
        let actual = ActualState(
            agents: [agent("a", heartbeat: now), agent("b", heartbeat: now)],
            instances: [
                instance("i-b", of: "p", index: 0, on: "b", since: now - 60),
                instance("i-a", of: "p", index: 0, on: "a", since: now - 60),
            ])
        #expect(decider.decide(desired: fresh([process("p", instances: 1)], at: now), actual: actual, now: now).decisions
            == [.stop(instance: "i-b", process: "p", index: 0, agent: "b", reason: .duplicate)])
    }

    // MARK: Scaling and stopping

    @Test func scaleDownStopsTheHighestIndexesFirst() {
        let now = ManualClock().now
        let actual = ActualState(
            agents: [agent("a", heartbeat: now)],
            instances: (0..<5).map { instance("i\($0)", of: "p", index: $0, on: "a", since: now - 60) }.shuffled())
        #expect(decider.decide(desired: fresh([process("p", instances: 2)], at: now), actual: actual, now: now).decisions == [
            .stop(instance: "i4", process: "p", index: 4, agent: "a", reason: .scaledDown),
            .stop(instance: "i3", process: "p", index: 3, agent: "a", reason: .scaledDown),
            .stop(instance: "i2", process: "p", index: 2, agent: "a", reason: .scaledDown),
        ])
    }

    @Test func aStoppedAppStopsEveryInstance() {
        let now = ManualClock().now
        let actual = ActualState(
            agents: [agent("a", heartbeat: now)],
            instances: (0..<2).map { instance("i\($0)", of: "p", index: $0, on: "a", since: now - 60) })
        #expect(decider.decide(desired: fresh([process("p", instances: 2, state: .stopped)], at: now), actual: actual, now: now).decisions == [
            .stop(instance: "i1", process: "p", index: 1, agent: "a", reason: .appStopped),
            .stop(instance: "i0", process: "p", index: 0, agent: "a", reason: .appStopped),
        ])
    }

    @Test func instancesOfProcessesNoLongerDesiredStop() {
        let now = ManualClock().now
        let actual = ActualState(
            agents: [agent("a", heartbeat: now)],
            instances: [
                instance("k0", of: "keep", index: 0, on: "a", since: now - 60),
                instance("g0", of: "gone", index: 0, on: "a", since: now - 60),
                instance("g1", of: "gone", index: 1, on: "a", since: now - 60),
            ])
        #expect(decider.decide(desired: fresh([process("keep", instances: 1)], at: now), actual: actual, now: now).decisions == [
            .stop(instance: "g1", process: "gone", index: 1, agent: "a", reason: .notDesired),
            .stop(instance: "g0", process: "gone", index: 0, agent: "a", reason: .notDesired),
        ])
    }

    @Test func aStoppingInstanceIsNeitherCountedNorStoppedAgain() {
        let now = ManualClock().now
        let actual = ActualState(
            agents: [agent("a", memory: 512, heartbeat: now)],
            instances: [
                instance("leaving", of: "p", index: 0, on: "a", .stopping, since: now - 1),
                instance("extra", of: "p", index: 3, on: "a", .stopping, since: now - 1),
            ])
        // Its room is still taken: 512 MB minus two 256 MB instances leaves none.
        #expect(decider.decide(desired: fresh([process("p", instances: 1)], at: now), actual: actual, now: now).decisions
            == [.unplaced(process: "p", index: 0, reason: "insufficient resources")])
    }

    @Test func decisionsDoNotDependOnInputOrder() {
        let now = ManualClock().now
        let agents = (1...4).map { agent("a\($0)", memory: 2048, heartbeat: now) }
        let processes = (1...6).map { process("p\($0)", instances: $0 % 3 + 1) }
        let instances = [
            instance("x", of: "p2", index: 0, on: "a1", since: now - 5),
            instance("y", of: "p2", index: 0, on: "a2", since: now - 50),
            instance("z", of: "p4", index: 5, on: "a3", since: now - 5),
            instance("w", of: "p9", index: 0, on: "a4", since: now - 5),
        ]
        let reference = decider.decide(desired: fresh(processes, at: now), actual: ActualState(agents: agents, instances: instances), now: now)
        #expect(reference.decisions.count > 10)
        for _ in 0..<20 {
            let shuffled = decider.decide(desired: fresh(processes.shuffled(), at: now),
                                          actual: ActualState(agents: agents.shuffled(), instances: instances.shuffled()), now: now)
            #expect(shuffled == reference)
        }
    }
}
