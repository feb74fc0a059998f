import Foundation
import PlatformModels
import Testing

@testable import CloudController

extension ControllerIntegration {
    @Suite(.timeLimit(.minutes(2))) struct AgentLongPoll {
        @Test func anAppStartWakesTheAgentsLongPollAtOnce() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let registered = try await p.registerAgent("dea-1")
                let app = try await p.app("web", space: t.space, token: t.token)
                try await p.stagedDroplet(app: app, token: t.token)
                let version = try await p.assignments("dea-1").version
                #expect(version == registered.assignmentsVersion)

                let clock = ContinuousClock()
                let pollStart = clock.now
                async let woken = p.assignments("dea-1", after: version, wait: 60)
                try await p.waitForSubscribers(1)  // from here on the start wakes the poll
                try await Task.sleep(for: .milliseconds(300))  // and it has read and parked by now
                let started = try await p.post("/v3/apps/\(app)/actions/start", t.token, "{}")
                let committed = clock.now
                #expect(started.status == .ok)
                let set = try await woken
                let answered = clock.now
                let delay = answered - committed
                print("assignments long-poll answered \(delay) after the start's commit (\(answered - pollStart) in all)")
                // Far below the 60 s wait, with room for a loaded machine.
                #expect(delay < .seconds(30), "the NOTIFY wakes the poll, not its timeout")
                #expect(answered - pollStart >= .milliseconds(300), "it waited for the change")
                #expect(set.version > version)
                #expect(set.instances.count == 1)
            }
        }

        @Test func parkedLongPollsHoldNoDatabaseConnection() async throws {
            try await Platform.run { p in
                // The harness's pool has 4 connections; 32 parked polls must not starve anyone.
                let t = try await p.tenant("alice")
                for i in 0..<8 { try await p.registerAgent("dea-\(i)", memoryMB: 256) }
                let version = try await p.assignments("dea-0").version
                let routes = try await p.routeTable().version
                let clock = ContinuousClock()
                try await withThrowingTaskGroup(of: (agent: Int, routes: Int).self) { group in
                    for i in 0..<24 {
                        group.addTask { (try await p.assignments("dea-\(i % 8)", after: version, wait: 60).instances.count, 0) }
                    }
                    for _ in 0..<8 {
                        group.addTask { (0, try await p.routeTable(after: routes, wait: 60).version > routes ? 1 : 0) }
                    }
                    try await p.waitForSubscribers(32)
                    try await Task.sleep(for: .milliseconds(300))
                    // Polls holding connections would keep it waiting for their 60 s.
                    let busy = clock.now
                    #expect(try await p.get("/v3/apps", t.token).status == .ok)
                    #expect(clock.now - busy < .seconds(30), "an ordinary request is served while polls are parked")
                    // Eight instances of 256 MB on eight agents of 256 MB: one each, so every poll wakes.
                    let woke = clock.now
                    _ = try await p.startedApp("web", t, instances: 8)
                    var assigned = 0, routers = 0
                    for try await answer in group {
                        assigned += answer.agent
                        routers += answer.routes
                    }
                    #expect(assigned == 24, "each parked agent poll answered with its agent's one instance")
                    #expect(routers == 8, "each parked router poll answered with a newer table")
                    #expect(clock.now - woke < .seconds(30))
                }
            }
        }

        @Test func aQuietLongPollAnswersAfterItsWaitWithTheSameVersion() async throws {
            try await Platform.run { p in
                try await p.registerAgent("dea-1")
                let version = try await p.assignments("dea-1").version
                let clock = ContinuousClock()
                let start = clock.now
                let set = try await p.assignments("dea-1", after: version, wait: 1)
                let elapsed = clock.now - start
                #expect(set.version == version)
                #expect(set.instances.isEmpty)
                #expect(elapsed >= .milliseconds(950) && elapsed < .seconds(30), "\(elapsed)")
                // A different `after` answers at once (not after its 60 s wait).
                let quick = clock.now
                #expect(try await p.assignments("dea-1", after: version + 7, wait: 60).version == version)
                #expect(clock.now - quick < .seconds(30))
                // Another agent's change does not wake this one.
                try await p.registerAgent("dea-2")
                let other = clock.now
                async let mine = p.assignments("dea-1", after: version, wait: 1)
                try await Task.sleep(for: .milliseconds(200))
                try await p.pool.query("UPDATE agents SET assignments_version = assignments_version + 1 WHERE id = 'dea-2'")
                try await p.pool.notify(channel: AgentProtocol.assignmentsChannel, payload: "dea-2")
                #expect(try await mine.version == version)
                #expect(clock.now - other >= .milliseconds(950))
            }
        }
    }
}
