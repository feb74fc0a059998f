import Foundation
import PlatformModels
import Testing

@testable import CloudController

extension ControllerIntegration {
    /// `/v3/admin/*`: the operator's views of agents, stagers, instances and the route table;
    /// and restarting one instance with `DELETE /v3/processes/:guid/instances/:index`.
    @Suite struct AdminViews {
        @Test func adminSeesAgentsStagersAndInstances() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-1", memoryMB: 2048, host: "192.0.2.10")
                _ = try await p.poll("stager-1", slots: 2)
                let (app, _) = try await p.startedApp("web", t)
                let assignment = try #require(try await p.assignments("dea-1").instances.first)
                #expect(try await p.heartbeat("dea-1", [Platform.running(assignment, port: 61001)]).status == .ok)

                let agents = try await p.get("/v3/admin/agents", p.adminToken)
                #expect(agents.status == .ok)
                let agent = try JSONDecoder().decode(ListResponse<AgentResource>.self, from: Data(agents.body.utf8))
                #expect(agent.pagination.totalResults == 1)
                let dea = try #require(agent.resources.first)
                #expect(dea.id == "dea-1" && dea.hostAddress == "192.0.2.10" && dea.state == "active" && dea.version == "test")
                #expect(dea.capacity.memoryInMB == 2048)
                #expect(dea.placedInstances == 1 && dea.runningInstances == 1)

                let stagers = try await p.get("/v3/admin/stagers", p.adminToken)
                #expect(stagers.status == .ok)
                let stager = try #require(try JSONDecoder().decode(ListResponse<StagerResource>.self, from: Data(stagers.body.utf8))
                    .resources.first)
                #expect(stager.id == "stager-1" && stager.freeSlots == 2 && stager.version == "test")

                let instances = try await p.get("/v3/admin/instances", p.adminToken)
                #expect(instances.status == .ok)
                let instance = try #require(try JSONDecoder().decode(ListResponse<InstanceResource>.self, from: Data(instances.body.utf8))
                    .resources.first)
                #expect(instance.appGuid == app && instance.appName == "web" && instance.processType == "web")
                #expect(instance.state == "RUNNING" && instance.agentId == "dea-1" && instance.hostAddress == "192.0.2.10")
                #expect(instance.hostPort == 61001 && instance.index == 0)
                #expect(try await p.get("/v3/admin/instances?agent_ids=dea-2", p.adminToken).resources.isEmpty)
                #expect(try await p.get("/v3/admin/instances?states=running&agent_ids=dea-1", p.adminToken).resources.count == 1)
                #expect(try await p.get("/v3/admin/agents?ids=dea-1", p.adminToken).resources.count == 1)
                #expect(try await p.get("/v3/admin/agents?order_by=bogus", p.adminToken).status == .badRequest)
            }
        }

        @Test func stagerCountsFollowTheBuildsNotItsLastPoll() async throws {
            try await Platform.run { p in
                let (t, app) = try await StagingAPI.setUp(p)
                let build = try await p.queuedBuild(app: app, token: t.token)
                func stager() async throws -> StagerResource {
                    let list = try await p.get("/v3/admin/stagers?ids=stager-1", p.adminToken)
                    return try #require(try JSONDecoder().decode(ListResponse<StagerResource>.self, from: Data(list.body.utf8))
                        .resources.first)
                }
                // It polled with two free slots and took the build: one staging, one free.
                #expect(try await p.poll("stager-1", slots: 2).jobs.map(\.buildGUID) == [build])
                var seen = try await stager()
                #expect(seen.running == 1 && seen.freeSlots == 1, "\(seen)")
                // The build ends while the stager is parked in its next poll: no poll tells it.
                #expect(try await p.complete(build, .failed(.stagingError, "broken", duration: 1)).status == .noContent)
                seen = try await stager()
                #expect(seen.running == 0 && seen.freeSlots == 2, "\(seen)")
            }
        }

        @Test func adminSeesTheRouteTableRoutersSee() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-1", host: "192.0.2.10")
                let (app, _) = try await p.startedApp("web", t)
                let route = try await p.route("hello", space: t.space, token: t.token)
                #expect(try await p.post("/v3/routes/\(route.guid)/destinations", t.token,
                                         #"{"destinations":[{"app":{"guid":"\#(app)"}}]}"#).status == .ok)
                let assignment = try #require(try await p.assignments("dea-1").instances.first)
                #expect(try await p.heartbeat("dea-1", [Platform.running(assignment, port: 61001)]).status == .ok)
                let r = try await p.get("/v3/admin/route_table", p.adminToken)
                #expect(r.status == .ok)
                let table = try JSONDecoder().decode(RouteTable.self, from: Data(r.body.utf8))
                #expect(table == (try await p.routeTable()))
                #expect(table.routes.first?.backends.first?.hostPort == 61001)
            }
        }

        @Test func othersAreNotAuthorized() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                for path in ["/v3/admin/agents", "/v3/admin/stagers", "/v3/admin/instances", "/v3/admin/route_table"] {
                    let r = try await p.get(path, t.token)
                    #expect(r.status == .forbidden, "\(path)")
                    #expect(r.errorTitle == "CF-NotAuthorized", "\(path)")
                    #expect(try await p.call(.get, path, token: nil).status == .unauthorized, "\(path)")
                }
            }
        }

        @Test func restartingAnInstanceReplacesItAtItsIndex() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let bob = try await p.tenant("bob")
                try await p.registerAgent("dea-1", host: "192.0.2.10")
                let (app, process) = try await p.startedApp("web", t, instances: 2)
                let before = try await p.assignments("dea-1")
                let first = try #require(before.instances.first { $0.index == 1 })

                // Another tenant does not see the process; an auditor of the space may not restart.
                #expect(try await p.delete("/v3/processes/\(process)/instances/1", bob.token).status == .notFound)
                let auditor = try await p.user("carol")
                try await p.role("organization_user", user: auditor.guid, org: t.org)
                try await p.role("space_auditor", user: auditor.guid, space: t.space)
                #expect(try await p.delete("/v3/processes/\(process)/instances/1", auditor.token).status == .forbidden)
                #expect(try await p.delete("/v3/processes/\(process)/instances/7", t.token).status == .notFound)
                #expect(try await p.delete("/v3/processes/\(process)/instances/x", t.token).status == .notFound)

                #expect(try await p.delete("/v3/processes/\(process)/instances/1", t.token).status == .noContent)
                let after = try await p.assignments("dea-1")
                #expect(after.version > before.version, "the agent is told")
                #expect(after.instances.count == 2)
                let replacement = try #require(after.instances.first { $0.index == 1 })
                #expect(replacement.instanceGUID != first.instanceGUID)
                #expect(after.instances.first { $0.index == 0 }?.instanceGUID == before.instances.first { $0.index == 0 }?.instanceGUID)

                // By app and process type too; the restart is audited.
                #expect(try await p.delete("/v3/apps/\(app)/processes/web/instances/0", t.token).status == .noContent)
                let events = try await p.get("/v3/audit_events?types=audit.app.process.terminate_instance", t.token)
                #expect(events.resources.count == 2)
            }
        }
    }
}
