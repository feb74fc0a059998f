import HealthManager
import PlatformModels
import Testing

/// Crash restarts through the decider, with a clock moved by hand.
@Suite struct BackoffDecisionTests {
    let decider = Decider()

    /// One crashed instance of a one-instance process; the state is re-read at every `now`.
    func plan(crashes: Int, crashedAt: Double, now: Double) -> Plan {
        let actual = ActualState(
            agents: [agent("a", heartbeat: now)],
            instances: [instance("i0", of: "p", index: 0, on: "a", .crashed, crashes: crashes, lastCrash: crashedAt, since: crashedAt)])
        return decider.decide(desired: fresh([process("p", instances: 1)], at: now), actual: actual, now: now)
    }

    static let expectedWaits: [(crashes: Int, wait: Double)] = [
        (1, 0), (2, 0), (3, 0), (4, 30), (5, 60), (6, 120), (7, 240), (8, 480), (9, 960), (10, 960),
    ]

    @Test(arguments: expectedWaits)
    func restartIsDecidedExactlyWhenTheWaitIsOver(crashes: Int, wait: Double) {
        var clock = ManualClock()
        let crashedAt = clock.now
        let restart = Decision.restart(instance: "i0", process: "p", index: 0, agent: "a", crashCount: crashes)
        if wait > 0 {
            clock.advance(by: wait - 1)
            let early = plan(crashes: crashes, crashedAt: crashedAt, now: clock.now)
            #expect(early.decisions == [])
            #expect(early.nextRestartAt == crashedAt + wait)
            clock.advance(by: 1)
        }
        let due = plan(crashes: crashes, crashedAt: crashedAt, now: clock.now)
        #expect(due.decisions == [restart])
        #expect(due.nextRestartAt == nil)
    }

    @Test func waitStaysAtSixteenMinutesForLaterCrashes() {
        for crashes in [11, 50, 199] {
            let crashedAt = ManualClock().now
            #expect(plan(crashes: crashes, crashedAt: crashedAt, now: crashedAt + 959).decisions == [], "crash \(crashes)")
            #expect(plan(crashes: crashes, crashedAt: crashedAt, now: crashedAt + 960).decisions.count == 1, "crash \(crashes)")
        }
    }

    @Test func givesUpAfterTwoHundredCrashes() {
        let crashedAt = ManualClock().now
        let plan = plan(crashes: 200, crashedAt: crashedAt, now: crashedAt + 86_400)
        // Left crashed: neither restarted nor replaced by a new instance.
        #expect(plan.decisions == [])
        #expect(plan.nextRestartAt == nil)
    }

    @Test func crashCountResetsAfterFiveMinutesUp() {
        var clock = ManualClock()
        let upSince = clock.now
        func running(now: Double) -> Plan {
            let actual = ActualState(
                agents: [agent("a", heartbeat: now)],
                instances: [instance("i0", of: "p", index: 0, on: "a", .running, crashes: 7, lastCrash: upSince - 5, since: upSince)])
            return decider.decide(desired: fresh([process("p", instances: 1)], at: now), actual: actual, now: now)
        }
        clock.advance(by: 299)
        #expect(running(now: clock.now).decisions == [])
        clock.advance(by: 1)
        #expect(running(now: clock.now).decisions == [.resetCrashCount(instance: "i0", process: "p", index: 0)])
        // With the count reset, the next crash is the first again and restarts at once.
        clock.advance(by: 10)
        #expect(plan(crashes: 1, crashedAt: clock.now, now: clock.now).decisions
            == [.restart(instance: "i0", process: "p", index: 0, agent: "a", crashCount: 1)])
    }

    @Test func aRunningInstanceWithoutCrashesNeedsNoReset() {
        let now = ManualClock().now
        let actual = ActualState(agents: [agent("a", heartbeat: now)],
                                 instances: [instance("i0", of: "p", index: 0, on: "a", since: now - 3600)])
        #expect(decider.decide(desired: fresh([process("p", instances: 1)], at: now), actual: actual, now: now).decisions == [])
    }

    @Test func nextRestartIsTheEarliestOfSeveralWaits() {
        let now = ManualClock().now
        let actual = ActualState(
            agents: [agent("a", heartbeat: now)],
            instances: [
                instance("i0", of: "p", index: 0, on: "a", .crashed, crashes: 6, lastCrash: now - 10, since: now - 10),  // due +110
                instance("i1", of: "p", index: 1, on: "a", .crashed, crashes: 4, lastCrash: now - 10, since: now - 10),  // due +20
            ])
        let plan = decider.decide(desired: fresh([process("p", instances: 2)], at: now), actual: actual, now: now)
        #expect(plan.decisions == [])
        #expect(plan.nextRestartAt == now + 20)
    }
}
