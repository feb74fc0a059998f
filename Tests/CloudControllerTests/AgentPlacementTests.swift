import Foundation
import PlatformModels
import PlatformRules
import Testing

@testable import CloudController

/// The pure placement decision: which instances a change keeps, removes and creates (where new
/// ones go is ``PlacementRule``'s, tested in PlatformRulesTests).
@Suite struct AgentPlacementDecision {
    typealias P = Placement

    static func process(_ guid: String = "p1", instances: Int, memory: Int = 256, version: String = "v1",
                        droplet: String? = "d1", stack: String? = "s") -> P.DesiredProcess {
        P.DesiredProcess(guid: guid, appGuid: "a-" + guid, type: "web", stack: stack, version: version, dropletGuid: droplet,
                         instances: instances, memoryMB: memory, diskMB: 100)
    }

    /// An agent of `memory` MB and `instances` slots, of which `listed` instances of 256 MB are taken.
    static func agent(_ id: String, memory: Int, active: Bool = true, stacks: [String] = ["s"], instances: Int = 10,
                      listed: Int = 0) -> PlacementRule.Agent {
        PlacementRule.Agent(id: id, stacks: stacks, accepting: active,
                            capacity: .init(memoryMB: memory, diskMB: 10_000, instances: instances),
                            listed: .init(memoryMB: 256 * listed, diskMB: 100 * listed, instances: listed))
    }

    static func instance(_ guid: String, process: String = "p1", index: Int, agent: String?, version: String = "v1",
                         droplet: String = "d1", memory: Int = 256) -> P.CurrentInstance {
        P.CurrentInstance(guid: guid, processGuid: process, index: index, agentID: agent, processVersion: version,
                          dropletGuid: droplet, memoryMB: memory, diskMB: 100)
    }

    static func counter() -> () -> String {
        var n = 0
        return { n += 1; return "new-\(n)" }
    }

    @Test func spreadsThenPrefersTheLeastLoadedAndLeavesWhatDoesNotFitUnplaced() {
        let d = P.decide(desired: [Self.process(instances: 6, memory: 512)],
                         current: [], agents: [Self.agent("a", memory: 1024), Self.agent("b", memory: 1536)], newGuid: Self.counter())
        // a and b both empty (the lower id); b has none of it yet; one each: b has the smaller
        // share in use (1/3 vs 1/2); a has fewer; a is full, so b; nothing left.
        #expect(d.creations.map(\.agentID) == ["a", "b", "b", "a", "b", nil])
        #expect(d.creations.map(\.index) == [0, 1, 2, 3, 4, 5])
        #expect(d.deletions.isEmpty)
    }

    @Test func needsTheStackAnActiveAgentAndAFreeSlot() {
        let agents = [Self.agent("lost", memory: 9999, active: false), Self.agent("other-stack", memory: 9999, stacks: ["t"]),
                      Self.agent("full", memory: 9999, instances: 0), Self.agent("ok", memory: 300)]
        let d = P.decide(desired: [Self.process(instances: 2)], current: [], agents: agents, newGuid: Self.counter())
        #expect(d.creations.map(\.agentID) == ["ok", nil])
    }

    @Test func keepsTheCurrentGenerationAndReplacesTheRest() {
        let current = [
            Self.instance("keep", index: 0, agent: "a"),
            Self.instance("old", index: 1, agent: "a", version: "v0"),
            Self.instance("extra", index: 2, agent: "a"),
            Self.instance("unplaced", index: 3, agent: nil),
        ]
        // The three on a fill it; removing "old" and "extra" makes room again.
        let d = P.decide(desired: [Self.process(instances: 2)], current: current, agents: [Self.agent("a", memory: 768, listed: 3)],
                         newGuid: Self.counter())
        #expect(Set(d.deletions) == ["old", "extra", "unplaced"])
        // The freed room goes to the replacement of index 1, which copies its generation's assignment.
        #expect(d.creations == [P.NewInstance(guid: "new-1", processGuid: "p1", appGuid: "a-p1", index: 1, agentID: "a", template: "keep")])
    }

    @Test func stoppedAppsAndDropletChangesRemoveEverything() {
        let current = [Self.instance("i0", index: 0, agent: "a"), Self.instance("i1", index: 1, agent: "a")]
        let full = Self.agent("a", memory: 512, listed: 2)
        let stopped = P.decide(desired: [Self.process(instances: 2, droplet: nil)], current: current, agents: [full])
        #expect(Set(stopped.deletions) == ["i0", "i1"])
        #expect(stopped.creations.isEmpty)
        let redeployed = P.decide(desired: [Self.process(instances: 1, droplet: "d2")], current: current,
                                  agents: [full], newGuid: Self.counter())
        #expect(Set(redeployed.deletions) == ["i0", "i1"])
        #expect(redeployed.creations.map(\.agentID) == ["a"], "the room of the old instances is free again")
        #expect(redeployed.creations.first?.template == nil)
    }

    @Test func instancesOnLostAgentsComeBackElsewhereUnderNewGuids() {
        let current = [Self.instance("i0", index: 0, agent: "gone"), Self.instance("i1", index: 1, agent: nil)]
        let d = P.decide(desired: [Self.process(instances: 2)], current: current,
                         agents: [Self.agent("gone", memory: 9999, active: false), Self.agent("b", memory: 1024)], newGuid: Self.counter())
        #expect(d.deletions == ["i0"])
        #expect(d.placements == [P.Placed(instanceGuid: "i1", agentID: "b")])
        #expect(d.creations.map(\.agentID) == ["b"])
        #expect(d.creations.map(\.index) == [0])
    }
}

extension ControllerIntegration {
    @Suite struct AgentPlacement {
        @Test func startScaleStopAndRestart() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let registered = try await p.registerAgent("dea-1")
                let (app, process) = try await p.startedApp("web", t)

                var set = try await p.assignments("dea-1")
                #expect(set.version > registered.assignmentsVersion)
                #expect(set.instances.count == 1)
                let first = try #require(set.instances.first)
                #expect(first.appGUID == app && first.processGUID == process && first.index == 0 && first.processType == "web")
                #expect(first.command == "./server.sh", "the droplet's command for the type")
                #expect(first.memoryMB == p.config.defaultMemoryMB)
                #expect(first.droplet.downloadPath == "/internal/v1/droplets/\(first.droplet.guid)/download")
                #expect(first.droplet.sha256.count == 64)
                #expect(first.healthCheck == HealthCheckSpec(type: .port, timeoutSeconds: 60, invocationTimeoutSeconds: 1))
                #expect(first.vcapApplication["application_id"] == .string(app))
                #expect(first.vcapApplication["application_name"] == .string("web"))
                #expect(first.vcapApplication["space_id"] == .string(t.space))
                #expect(first.vcapApplication["organization_name"] == .string("org-alice"))
                #expect(first.vcapApplication["cf_api"] == .string(Platform.baseURL))
                #expect(first.vcapApplication["limits"] == .object(["mem": .number(256), "disk": .number(1024), "fds": .number(16384)]))
                #expect(first.vcapServices == "{}")

                // Scale up: one more instance, the first one untouched.
                #expect(try await p.post("/v3/processes/\(process)/actions/scale", t.token, #"{"instances":3}"#).status == .accepted)
                set = try await p.assignments("dea-1")
                #expect(set.instances.map(\.index) == [0, 1, 2])
                #expect(set.instances[0].instanceGUID == first.instanceGUID)
                // Scale down.
                #expect(try await p.post("/v3/processes/\(process)/actions/scale", t.token, #"{"instances":1}"#).status == .accepted)
                set = try await p.assignments("dea-1")
                #expect(set.instances.map(\.instanceGUID) == [first.instanceGUID])

                // An environment change waits for the next restart, as in CF.
                #expect(try await p.patch("/v3/apps/\(app)/environment_variables", t.token, #"{"var":{"GREETING":"hi"}}"#).status == .ok)
                #expect(try await p.assignments("dea-1").instances.first?.environment == [:])

                // Restart: new guids (and the new environment).
                let before = set.version
                #expect(try await p.post("/v3/apps/\(app)/actions/restart", t.token, "{}").status == .ok)
                set = try await p.assignments("dea-1")
                #expect(set.version > before)
                #expect(set.instances.count == 1)
                #expect(set.instances.first?.instanceGUID != first.instanceGUID)
                #expect(set.instances.first?.environment == ["GREETING": "hi"])

                // Stop: nothing left.
                #expect(try await p.post("/v3/apps/\(app)/actions/stop", t.token, "{}").status == .ok)
                set = try await p.assignments("dea-1")
                #expect(set.instances.isEmpty)
                #expect(try await p.count("instances") == 0)

                // Start again, then delete the app: the agent is told.
                #expect(try await p.post("/v3/apps/\(app)/actions/start", t.token, "{}").status == .ok)
                let started = try await p.assignments("dea-1")
                #expect(started.instances.count == 1)
                #expect(try await p.delete("/v3/apps/\(app)", t.token).status == .accepted)
                let afterDelete = try await p.assignments("dea-1")
                #expect(afterDelete.instances.isEmpty && afterDelete.version > started.version)
            }
        }

        @Test func twoAgentsShareSpreadThenLeastLoaded() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-a", memoryMB: 1024)
                try await p.registerAgent("dea-b", memoryMB: 2048)
                _ = try await p.startedApp("web", t, instances: 4, memoryMB: 512)
                let a = try await p.assignments("dea-a").instances.map(\.index)
                let b = try await p.assignments("dea-b").instances.map(\.index)
                // Spread first: a (tie, lower id), b, b (a quarter of b in use vs half of a), a.
                #expect(a.count + b.count == 4)
                #expect(a.count == 2 && b.count == 2)
                #expect(Set(a + b) == [0, 1, 2, 3])
            }
        }

        @Test func withoutAnAgentInstancesWaitUnplacedAndShowDown() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let (_, process) = try await p.startedApp("web", t, instances: 2)
                let stats = try await p.stats(process, t.token)
                #expect(stats.map { $0["state"] as? String } == ["DOWN", "DOWN"])
                #expect(stats.map { $0["index"] as? Int } == [0, 1])
                #expect((stats.first?["details"] as? String)?.contains("insufficient resources") == true)
                let unplaced = try await p.pool.query("SELECT count(*) AS n FROM instances WHERE agent_id IS NULL").rows[0]
                #expect(unplaced["n"] == "2")

                // A small agent takes what fits; the rest waits.
                try await p.registerAgent("dea-small", memoryMB: 300)
                #expect(try await p.assignments("dea-small").instances.count == 1)
                let after = try await p.stats(process, t.token).map { $0["state"] as? String }
                #expect(after.sorted { ($0 ?? "") < ($1 ?? "") } == ["DOWN", "STARTING"])
            }
        }

        @Test func deletingTheCurrentDropletOrTheWholeSpaceTellsTheAgent() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-1")
                let (app, _) = try await p.startedApp("one", t)
                let droplet = try await p.get("/v3/apps/\(app)/droplets/current", t.token).guid
                var set = try await p.assignments("dea-1")
                #expect(set.instances.count == 1)
                #expect(try await p.delete("/v3/droplets/\(droplet)", t.token).status == .accepted)
                let afterDroplet = try await p.assignments("dea-1")
                #expect(afterDroplet.instances.isEmpty && afterDroplet.version > set.version)

                // A cascade (space -> apps -> processes -> instances) reaches the agent too.
                _ = try await p.startedApp("two", t, instances: 2)
                set = try await p.assignments("dea-1")
                #expect(set.instances.count == 2)
                #expect(try await p.delete("/v3/spaces/\(t.space)", p.adminToken).status == .accepted)
                let afterSpace = try await p.assignments("dea-1")
                #expect(afterSpace.instances.isEmpty && afterSpace.version > set.version)
                #expect(try await p.count("instances") == 0)
            }
        }

        @Test func aSilentAgentIsLostAndItsInstancesMove() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-a", memoryMB: 4096)
                let (_, process) = try await p.startedApp("web", t)
                let onA = try #require(try await p.assignments("dea-a").instances.first)
                try await p.registerAgent("dea-b", memoryMB: 1024)
                #expect(try await p.assignments("dea-b").instances.isEmpty)
                let route = try await p.route("lost", space: t.space, token: t.token)
                #expect(try await p.post("/v3/routes/\(route.guid)/destinations", t.token,
                                         #"{"destinations":[{"app":{"guid":"\#(onA.appGUID)"}}]}"#).status == .ok)
                #expect(try await p.heartbeat("dea-a", [Platform.running(onA, port: 61001)]).status == .ok)
                let table = try await p.routeTable()
                #expect(table.routes.first { $0.routeGUID == route.guid }?.backends.count == 1)

                try await p.pool.query("UPDATE agents SET last_heartbeat_at = now() - interval '1 hour' WHERE id = 'dea-a'")
                let lost = try await AgentMonitor.sweep(Database(pool: p.pool), lostAfterSeconds: 30, cfAPI: Platform.baseURL)
                #expect(lost == ["dea-a"])
                let afterLoss = try await p.routeTable()
                #expect(afterLoss.version > table.version)
                #expect(afterLoss.routes.first { $0.routeGUID == route.guid }?.backends.isEmpty == true)
                #expect(try await p.stats(process, t.token).first?["details"] as? String == "the execution agent running this instance was lost")
                // Moving the instance is the health manager's decision.
                #expect(try await p.assignments("dea-b").instances.isEmpty)
                try await p.healthPass("hm-1")
                #expect(try await p.assignments("dea-a").instances.isEmpty)
                let moved = try #require(try await p.assignments("dea-b").instances.first)
                #expect(moved.index == 0 && moved.instanceGUID != onA.instanceGUID)
                #expect(try await p.stats(process, t.token).first?["state"] as? String == "STARTING")
                // The lost agent must register again.
                #expect(try await p.heartbeat("dea-a", []).status == .notFound)
                try await p.registerAgent("dea-a", memoryMB: 4096)
                #expect(try await p.heartbeat("dea-a", []).status == .ok)
            }
        }
    }
}
