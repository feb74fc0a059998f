import Containers
import Foundation
import PlatformModels
import Testing

@testable import ExecutionAgent

/// The agent's convergence, crash, OOM, stop and adoption decisions against a fake runtime:
/// no root, no runc, milliseconds each. Every wait is bounded; converge must always return.
@Suite struct AgentDecisionTests {
    @Test func convergeStartsWhatIsMissingAndStopsWhatIsExtra() async throws {
        let lab = try FakeAgentLab()
        let a = FakeAgentLab.assignment(index: 0), b = FakeAgentLab.assignment(index: 1)
        let running = lab.agent.expectEvent { $0.instanceGUID == b.instanceGUID && $0.type == .running }
        await lab.agent.converge(to: [a, b])
        _ = try await running.wait(timeout: .seconds(60))
        let stopped = lab.agent.expectEvent { $0.instanceGUID == a.instanceGUID && $0.type == .stopped }
        await lab.agent.converge(to: [b])
        _ = try await stopped.wait(timeout: .seconds(60))
        try await eventually { await lab.agent.reports().map(\.instanceGUID) == [b.instanceGUID] }
        #expect(lab.runtime.read { $0.records[a.instanceGUID] } == nil)
        #expect(lab.runtime.read { $0.containers["cfl-" + a.instanceGUID] } == nil)
    }

    @Test func fiftyInstancesStartedAndCrashedAtOnceEndCrashedAndConvergeAlwaysReturns() async throws {
        let lab = try FakeAgentLab(parallelStarts: 4)
        let assignments = (0..<50).map { FakeAgentLab.assignment(index: $0) }
        let guids = Set(assignments.map(\.instanceGUID))
        // Every start hangs until released: converge must return all the same.
        lab.runtime.set { $0.startGate = true }
        await lab.agent.converge(to: assignments)
        #expect(await lab.agent.reports().filter { $0.state == .starting }.count == 50)
        lab.runtime.set { $0.startGate = nil }
        try await eventually { await lab.agent.reports().filter { $0.state == .running }.count == 50 }
        #expect(lab.runtime.read { $0.maxStartsInFlight } <= 4, "parallel_starts bounds the starts in flight")
        for guid in guids { lab.runtime.exit(guid, status: 3, reason: "exited with status 3") }
        await lab.agent.checkExits()
        let reports = await lab.agent.reports()
        #expect(reports.count == 50)
        #expect(reports.allSatisfy { $0.state == .crashed && $0.crashCount == 1 && $0.hostPort == nil })
        // Converging to the same set again starts nothing new (crashed instances stay until the CC drops them).
        await lab.agent.converge(to: assignments)
        #expect(await lab.agent.reports().filter { $0.state == .crashed }.count == 50)
        await lab.agent.converge(to: [])
        try await eventually { await lab.agent.reports().isEmpty }
    }

    @Test func aCrashIsReportedWithItsStatusAndAnOOMKillAsOutOfMemory() async throws {
        let lab = try FakeAgentLab()
        let web = FakeAgentLab.assignment(index: 0), hog = FakeAgentLab.assignment(index: 1)
        try await lab.converge(to: [web, hog], untilRunning: hog)
        try await eventually { await lab.agent.reports().allSatisfy { $0.state == .running } }

        let crashed = lab.agent.expectEvent { $0.type == .crashed && $0.instanceGUID == web.instanceGUID }
        lab.runtime.exit(web.instanceGUID, status: 3, reason: "exited with status 3")
        await lab.agent.checkExits()
        let event = try await crashed.wait(timeout: .seconds(60))
        #expect(event.exitStatus == 3 && event.reason == "exited with status 3" && event.crashCount == 1)

        let oom = lab.agent.expectEvent { $0.type == .crashed && $0.instanceGUID == hog.instanceGUID }
        lab.runtime.exit(hog.instanceGUID, status: 137, reason: "out of memory")
        await lab.agent.checkExits()
        let oomEvent = try await oom.wait(timeout: .seconds(60))
        #expect(oomEvent.reason == "out of memory" && oomEvent.exitStatus == 137)
        let reports = await lab.agent.reports()
        #expect(reports.map(\.state) == [.crashed, .crashed])
        #expect(lab.runtime.read { $0.containers.isEmpty }, "crashed containers are removed")
    }

    @Test func anEventThatHappenedBeforeTheWaitIsNotMissedAndAWaitWithoutOneEndsAtItsDeadline() async throws {
        let lab = try FakeAgentLab()
        let a = FakeAgentLab.assignment()
        let running = lab.agent.expectEvent { $0.instanceGUID == a.instanceGUID && $0.type == .running }
        await lab.agent.converge(to: [a])
        try await eventually { await lab.agent.reports().first?.state == .running }
        // The event came before the wait began.
        #expect(try await running.wait(timeout: .seconds(60)).type == .running)
        // No such event comes: the wait ends (a wait that never returned would hang the run).
        await #expect(throws: (any Error).self) {
            try await lab.agent.nextEvent(where: { $0.type == .crashed }, timeout: .milliseconds(200))
        }
    }

    @Test func aStartThatHangsIsStoppedAndItsSlotGivenBack() async throws {
        let lab = try FakeAgentLab(parallelStarts: 1)
        lab.runtime.set { $0.startGate = true }
        let stuck = FakeAgentLab.assignment(index: 0)
        await lab.agent.converge(to: [stuck])
        try await eventually { lab.runtime.read { $0.startsInFlight } == 1 }
        // The CC drops it while its start hangs: the stop cancels the start and returns.
        let stopped = lab.agent.expectEvent { $0.instanceGUID == stuck.instanceGUID && $0.type == .stopped }
        await lab.agent.converge(to: [])
        _ = try await stopped.wait(timeout: .seconds(60))
        try await eventually { await lab.agent.reports().isEmpty }
        // The one slot is free again: the next instance starts.
        lab.runtime.set { $0.startGate = nil }
        let next = FakeAgentLab.assignment(index: 1)
        try await lab.converge(to: [next], untilRunning: next)
    }

    @Test func aFailedStartIsReportedAndGivesItsSlotBack() async throws {
        let lab = try FakeAgentLab(parallelStarts: 1)
        lab.runtime.set { $0.startFailure = "runc create failed: container with given ID already exists" }
        let a = FakeAgentLab.assignment(index: 0)
        let failed = lab.agent.expectEvent { $0.instanceGUID == a.instanceGUID }
        await lab.agent.converge(to: [a])
        let event = try await failed.wait(timeout: .seconds(60))
        #expect(event.type == .failed)
        #expect(event.reason.contains("already exists"))
        lab.runtime.set { $0.startFailure = nil }
        let b = FakeAgentLab.assignment(index: 1)
        try await lab.converge(to: [a, b], untilRunning: b)
    }

    @Test func wordsFromRuncAndTheAppAreCleanedBeforeTheyLeaveTheAgent() async throws {
        let lab = try FakeAgentLab()
        lab.runtime.set { $0.startFailure = "runc said \u{1B}[31mred\u{1B}[0m\u{0}\nsecond line" }
        let (event, lines) = try await lab.firstEventOfOneInstance()
        #expect(event.reason == "failed to start: runc said red second line")
        let details = try #require(await lab.agent.reports().first?.details)
        #expect(details == event.reason)
        await lab.agent.shipLogs()
        let cell = lines.all.filter { $0.sourceType == "CELL" }.map(\.message)
        #expect(cell.contains("Failed to create container: runc said red second line"))
        #expect(!cell.joined().unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
    }

    @Test func aCrashDuringAStopEndsStoppedNotCrashed() async throws {
        let lab = try FakeAgentLab(stopGraceSeconds: 2)
        let a = FakeAgentLab.assignment()
        try await lab.converge(to: [a], untilRunning: a)
        lab.runtime.set { $0.containers["cfl-" + a.instanceGUID]?.ignoresTerm = true }
        let ended = lab.agent.expectEvent { $0.instanceGUID == a.instanceGUID && $0.type != .running }
        await lab.agent.converge(to: [])
        try await eventually { lab.runtime.read { $0.containers["cfl-" + a.instanceGUID]?.signals == [15] } }
        // It crashes on its own while the stop waits out the grace period.
        lab.runtime.exit(a.instanceGUID, status: 1, reason: "exited with status 1")
        await lab.agent.checkExits()
        let event = try await ended.wait(timeout: .seconds(60))
        #expect(event.type == .stopped)
        try await eventually { await lab.agent.reports().isEmpty }
    }

    @Test func anInstanceIgnoringTermIsKilledAfterTheGrace() async throws {
        let lab = try FakeAgentLab(stopGraceSeconds: 1)
        let a = FakeAgentLab.assignment()
        try await lab.converge(to: [a], untilRunning: a)
        lab.runtime.set { $0.containers["cfl-" + a.instanceGUID]?.ignoresTerm = true }
        let stopped = lab.agent.expectEvent { $0.instanceGUID == a.instanceGUID && $0.type == .stopped }
        await lab.agent.converge(to: [])
        let event = try await stopped.wait(timeout: .seconds(60))
        #expect(event.exitStatus == 137)
    }

    @Test func aRecordThatCannotBeSavedIsReportedNotDropped() async throws {
        let lab = try FakeAgentLab()
        lab.runtime.set { $0.persistFailure = "No space left on device" }
        let (event, lines) = try await lab.firstEventOfOneInstance()
        #expect(event.type == .failed)
        #expect(event.reason.contains("cannot save the instance record"))
        await lab.agent.shipLogs()
        #expect(lines.all.contains { $0.sourceType == "CELL" && $0.message.contains("No space left on device") })
        #expect(lab.runtime.read { $0.startsInFlight == 0 && $0.containers.isEmpty }, "nothing was started without a record")
    }

    @Test func aRestartedAgentAdoptsRunningContainersReportsLostOnesAndRemovesUnknownOnes() async throws {
        let lab = try FakeAgentLab()
        let keep = FakeAgentLab.assignment(index: 0), lose = FakeAgentLab.assignment(index: 1), gone = FakeAgentLab.assignment(index: 2)
        try await lab.converge(to: [keep, lose, gone], untilRunning: gone)
        try await eventually { await lab.agent.reports().allSatisfy { $0.state == .running } }
        // The agent dies (no stop). Meanwhile `lose` ends, `gone` was being stopped, and a
        // container nobody recorded appears.
        lab.runtime.exit(lose.instanceGUID, status: 2, reason: "exited with status 2")
        lab.runtime.set { state in
            state.records[gone.instanceGUID]?.stopRequested = true
            state.containers["cfl-" + gone.instanceGUID]?.running = false
            state.containers["cfl-" + gone.instanceGUID]?.exit = (143, "killed by signal 15")
        }
        lab.runtime.addContainer("cfl-unknown")

        let next = try lab.restarted()
        let lost = next.agent.expectEvent { $0.instanceGUID == lose.instanceGUID && $0.type == .crashed }
        try await next.agent.prepare()
        let event = try await lost.wait(timeout: .seconds(60))
        #expect(event.exitStatus == 2)
        let reports = await next.agent.reports()
        #expect(Set(reports.map(\.instanceGUID)) == [keep.instanceGUID, lose.instanceGUID])
        #expect(reports.first { $0.instanceGUID == keep.instanceGUID }?.state == .running)
        #expect(reports.first { $0.instanceGUID == lose.instanceGUID }?.state == .crashed)
        #expect(next.runtime.read { Set($0.containers.keys) } == ["cfl-" + keep.instanceGUID])
        #expect(next.runtime.read { $0.records[gone.instanceGUID] } == nil)
        // The adopted instance goes on being managed: it stops when the CC drops it.
        let stopped = next.agent.expectEvent { $0.instanceGUID == keep.instanceGUID && $0.type == .stopped }
        await next.agent.converge(to: [lose].map { $0 })
        _ = try await stopped.wait(timeout: .seconds(60))
    }

    @Test func startsTheKilledAgentDidNotSeeThroughAreAdoptedOrBegunAgain() async throws {
        let lab = try FakeAgentLab()
        let running = FakeAgentLab.assignment(index: 0), starting = FakeAgentLab.assignment(index: 1),
            lost = FakeAgentLab.assignment(index: 2)
        // What an agent killed mid-converge leaves: records without a start time. Two shims
        // went on and started their containers after the agent died; one start left nothing
        // but its record.
        for (i, assignment) in [running, starting].enumerated() {
            var record = InstanceRecord(assignment: assignment, now: Date())
            record.attachment = NetworkAttachment(
                id: record.containerID, namespaceName: "n\(i)", namespacePath: "/fake/\(i)", hostInterface: "v\(i)",
                gatewayAddress: "10.9.1.1", containerAddress: "10.9.1.\(2 + i * 4)", hostPort: 60100 + i, containerPort: 8080)
            try lab.runtime.persist(record)
            lab.runtime.addContainer(record.containerID)
        }
        try lab.runtime.persist(InstanceRecord(assignment: lost, now: Date()))

        let adoptedUp = lab.agent.expectEvent { $0.instanceGUID == running.instanceGUID && $0.type == .running }
        let lostUp = lab.agent.expectEvent { $0.instanceGUID == lost.instanceGUID && $0.type == .running }
        try await lab.agent.prepare()
        _ = try await adoptedUp.wait(timeout: .seconds(60))
        _ = try await lostUp.wait(timeout: .seconds(60))
        try await eventually { await lab.agent.reports().filter { $0.state == .running }.count == 3 }
        #expect(lab.runtime.read { $0.containers.count } == 3, "one container each, none twice")
        // The adopted start is watched: its exit is a crash like any other.
        let crashed = lab.agent.expectEvent { $0.instanceGUID == running.instanceGUID && $0.type == .crashed }
        lab.runtime.exit(running.instanceGUID, status: 4, reason: "exited with status 4")
        await lab.agent.checkExits()
        #expect(try await crashed.wait(timeout: .seconds(60)).exitStatus == 4)
    }

    @Test func anUnhealthyStartFailsAfterItsTimeout() async throws {
        let lab = try FakeAgentLab()
        lab.runtime.set { $0.healthy = false }
        var unhealthy = FakeAgentLab.assignment()
        unhealthy.healthCheck = HealthCheckSpec(type: .port, timeoutSeconds: 1)
        let a = unhealthy
        let crashed = lab.agent.expectEvent { $0.instanceGUID == a.instanceGUID && $0.type == .crashed }
        await lab.agent.converge(to: [a])
        let event = try await crashed.wait(timeout: .seconds(60))
        #expect(event.reason.hasPrefix("Instance never healthy after 1s"))
    }

    @Test func adoptionDecisions() throws {
        var record = InstanceRecord(assignment: FakeAgentLab.assignment(), now: Date())
        #expect(Adoption.decide(record, hasContainer: false, running: false) == .restart, "a start that died with its agent")
        #expect(Adoption.decide(record, hasContainer: false, running: true) == .adoptStart, "its shim is still starting it")
        #expect(Adoption.decide(record, hasContainer: true, running: true) == .adoptStart, "its shim started it")
        record.startedAt = 1
        #expect(Adoption.decide(record, hasContainer: true, running: true) == .adopt)
        #expect(Adoption.decide(record, hasContainer: false, running: true) == .settle)
        #expect(Adoption.decide(record, hasContainer: true, running: false) == .settle)
        record.stopRequested = true
        #expect(Adoption.decide(record, hasContainer: true, running: true) == .adopt, "its stop goes on")
        #expect(Adoption.decide(record, hasContainer: true, running: false) == .forget)
        record.stopRequested = false
        record.state = .crashed
        #expect(Adoption.decide(record, hasContainer: true, running: true) == .settle, "a crashed record is not adopted")
    }
}

/// Polls `condition` every 10 ms until it holds; fails after `timeout`.
func eventually(timeout: Duration = .seconds(60), _ condition: () async throws -> Bool,
                sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition not met within \(timeout)", sourceLocation: sourceLocation)
    throw CancellationError()
}
