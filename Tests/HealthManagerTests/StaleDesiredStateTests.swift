import HealthManager
import PlatformModels
import Testing

/// With desired state unknown or stale, what runs keeps running (SECURITY.md G1).
@Suite struct StaleDesiredStateTests {
    let decider = Decider()
    let now = ManualClock().now

    /// A state in which fresh desired state stops and restarts plenty.
    var actual: ActualState {
        ActualState(
            agents: [agent("a", heartbeat: now), agent("b", heartbeat: now), agent("d", heartbeat: now, draining: true)],
            instances: [
                instance("extra", of: "p", index: 3, on: "a", since: now - 60),
                instance("crashed", of: "p", index: 0, on: "a", .crashed, crashes: 1, since: now - 1),
                instance("dup-old", of: "p", index: 1, on: "a", since: now - 600),
                instance("dup-new", of: "p", index: 1, on: "b", since: now - 60),
                instance("evacuee", of: "q", index: 0, on: "d", since: now - 600),
                instance("replacement", of: "q", index: 0, on: "b", since: now - 5),
                instance("orphan", of: "gone", index: 0, on: "b", since: now - 60),
                instance("stopped-app", of: "s", index: 0, on: "b", since: now - 60),
            ])
    }

    let processes = [
        process("p", instances: 3),
        process("q", instances: 1),
        process("s", instances: 1, state: .stopped),
    ]

    @Test func freshDesiredStateStopsAndRestarts() {
        let plan = decider.decide(desired: fresh(processes, at: now), actual: actual, now: now)
        #expect(plan.desiredWasFresh)
        #expect(plan.decisions == [
            .stop(instance: "extra", process: "p", index: 3, agent: "a", reason: .scaledDown),
            .restart(instance: "crashed", process: "p", index: 0, agent: "a", crashCount: 1),
            .stop(instance: "dup-old", process: "p", index: 1, agent: "a", reason: .duplicate),
            .place(process: "p", index: 2, agent: "b"),
            .stop(instance: "evacuee", process: "q", index: 0, agent: "d", reason: .evacuated),
            .stop(instance: "stopped-app", process: "s", index: 0, agent: "b", reason: .appStopped),
            .stop(instance: "orphan", process: "gone", index: 0, agent: "b", reason: .notDesired),
        ])
    }

    @Test func desiredStateMarkedStaleStopsAndRestartsNothing() {
        let desired = DesiredState(processes: processes, isFresh: false, asOf: now)
        let plan = decider.decide(desired: desired, actual: actual, now: now)
        #expect(!plan.desiredWasFresh)
        #expect(plan.decisions == [.place(process: "p", index: 2, agent: "b")])
    }

    @Test func desiredStateOlderThanTheThresholdStopsAndRestartsNothing() {
        #expect(decider.decide(desired: fresh(processes, at: now - 30), actual: actual, now: now).decisions.contains { $0.isDisruptive })
        let plan = decider.decide(desired: fresh(processes, at: now - 30.5), actual: actual, now: now)
        #expect(!plan.desiredWasFresh)
        #expect(plan.decisions == [.place(process: "p", index: 2, agent: "b")])
    }

    @Test func theStaleThresholdIsConfigurable() {
        let lenient = Decider(configuration: .init(staleAfter: 120))
        #expect(lenient.decide(desired: fresh(processes, at: now - 100), actual: actual, now: now).desiredWasFresh)
        #expect(!lenient.decide(desired: fresh(processes, at: now - 121), actual: actual, now: now).desiredWasFresh)
    }

    @Test func unknownDesiredStateDecidesNothingAtAll() {
        let plan = decider.decide(desired: .unknown, actual: actual, now: now)
        #expect(!plan.desiredWasFresh)
        #expect(plan.decisions == [])
    }

    @Test func desiredStateWithoutATimeIsStale() {
        let plan = decider.decide(desired: DesiredState(processes: processes, isFresh: true, asOf: nil), actual: actual, now: now)
        #expect(!plan.decisions.contains { $0.isDisruptive })
    }

    @Test func crashedInstancesStayCrashedUntilDesiredStateIsFreshAgain() {
        let crashed = ActualState(
            agents: [agent("a", heartbeat: now)],
            instances: [instance("c", of: "p", index: 0, on: "a", .crashed, crashes: 2, since: now - 120)])
        let desired = [process("p", instances: 1)]
        #expect(decider.decide(desired: fresh(desired, at: now - 60), actual: crashed, now: now).decisions == [])
        #expect(decider.decide(desired: fresh(desired, at: now), actual: crashed, now: now).decisions
            == [.restart(instance: "c", process: "p", index: 0, agent: "a", crashCount: 2)])
    }
}
