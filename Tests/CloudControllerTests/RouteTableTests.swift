import Foundation
import PlatformModels
import Testing

@testable import CloudController

extension ControllerIntegration {
    @Suite(.timeLimit(.minutes(2))) struct RouteTableFromReports {
        @Test func runningInstancesBecomeBackendsAndCrashedOnesLeave() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-1", host: "192.0.2.10")
                let (app, process) = try await p.startedApp("web", t)
                let route = try await p.route("Hello", space: t.space, token: t.token)
                #expect(route.status == .created)
                #expect(try await p.post("/v3/routes/\(route.guid)/destinations", t.token,
                                         #"{"destinations":[{"app":{"guid":"\#(app)"}}]}"#).status == .ok)
                var table = try await p.routeTable()
                var entry = try #require(table.routes.first { $0.routeGUID == route.guid })
                #expect(entry.host == "hello.\(p.config.defaultDomain)")
                #expect(entry.path == "")
                #expect(entry.backends.isEmpty, "nothing runs yet")

                let assignment = try #require(try await p.assignments("dea-1").instances.first)
                #expect(assignment.vcapApplication["uris"] == .array([]), "routes mapped after the start count from the next restart")
                // STARTING is not routable and does not move the version.
                var starting = Platform.running(assignment, port: 61001)
                starting.state = .starting
                #expect(try await p.heartbeat("dea-1", [starting]).status == .ok)
                #expect(try await p.routeTable().version == table.version)
                #expect(try await p.stats(process, t.token).first?["state"] as? String == "STARTING")

                // RUNNING: the backend appears and the version moves (a parked router is woken).
                let parkedAt = table.version
                async let woken = p.routeTable(after: parkedAt, wait: 20)
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await p.heartbeat("dea-1", [Platform.running(assignment, port: 61001)]).status == .ok)
                table = try await woken
                entry = try #require(table.routes.first { $0.routeGUID == route.guid })
                #expect(entry.backends == [RouteBackend(
                    appGUID: app, processType: "web", instanceGUID: assignment.instanceGUID, index: 0, hostAddress: "192.0.2.10",
                    hostPort: 61001, containerAddress: "10.255.0.2", containerPort: 8080)])

                // The same heartbeat again changes nothing.
                #expect(try await p.heartbeat("dea-1", [Platform.running(assignment, port: 61001)]).status == .ok)
                #expect(try await p.routeTable().version == table.version)

                // Process stats reflect the report.
                let stats = try #require(try await p.stats(process, t.token).first)
                #expect(stats["state"] as? String == "RUNNING")
                #expect(stats["host"] as? String == "192.0.2.10")
                #expect(stats["type"] as? String == "web")
                #expect(stats["uptime"] as? Int == 12)
                #expect(stats["mem_quota"] as? Int == 256 << 20)
                #expect(stats["fds_quota"] as? Int == 16384)
                let ports = stats["instance_ports"] as? [[String: Any]]
                #expect(ports?.first?["external"] as? Int == 61001 && ports?.first?["internal"] as? Int == 8080)
                let usage = stats["usage"] as? [String: Any]
                #expect(usage?["mem"] as? Int == 50 << 20 && usage?["cpu"] as? Double == 0.25)
                #expect(usage?["time"] as? String != nil)

                // A crash takes the backend away at once.
                let crash = InstanceEvent(instanceGUID: assignment.instanceGUID, processGUID: process, appGUID: app, index: 0,
                                          type: .crashed, exitStatus: 137, reason: "out of memory", crashCount: 1,
                                          timestamp: Date().timeIntervalSince1970)
                #expect(try await p.component(.post, "/internal/v1/agents/dea-1/events", body: InstanceEventBatch(events: [crash])).status == .ok)
                let crashed = try await p.routeTable()
                #expect(crashed.version > table.version)
                #expect(crashed.routes.first { $0.routeGUID == route.guid }?.backends.isEmpty == true)
                let crashedStats = try #require(try await p.stats(process, t.token).first)
                #expect(crashedStats["state"] as? String == "CRASHED")
                #expect(crashedStats["details"] as? String == "out of memory")

                // Running again, then the app stops: gone from the table.
                #expect(try await p.heartbeat("dea-1", [Platform.running(assignment, port: 61002)]).status == .ok)
                #expect(try await p.routeTable().routes.first { $0.routeGUID == route.guid }?.backends.first?.hostPort == 61002)
                let beforeStop = try await p.routeTable().version
                #expect(try await p.post("/v3/apps/\(app)/actions/stop", t.token, "{}").status == .ok)
                let stopped = try await p.routeTable()
                #expect(stopped.version > beforeStop)
                #expect(stopped.routes.first { $0.routeGUID == route.guid }?.backends.isEmpty == true)
                #expect(try await p.stats(process, t.token).first?["state"] as? String == "DOWN")
            }
        }

        @Test func aQuietRouteTablePollAnswersAfterItsWait() async throws {
            try await Platform.run { p in
                let table = try await p.routeTable()
                let clock = ContinuousClock()
                let start = clock.now
                let again = try await p.routeTable(after: table.version, wait: 1)
                #expect(again.version == table.version)
                #expect(clock.now - start >= .milliseconds(950))
                #expect(try await p.component(.get, "/internal/v1/routes?wait=-1").status == .badRequest)
            }
        }

        @Test func statsFollowTheProcessesVisibility() async throws {
            try await Platform.run { p in
                let alice = try await p.tenant("alice")
                let bob = try await p.tenant("bob")
                let (app, process) = try await p.startedApp("web", alice)
                #expect(try await p.get("/v3/processes/\(process)/stats", bob.token).status == .notFound)
                #expect(try await p.get("/v3/apps/\(app)/processes/web/stats", bob.token).status == .notFound)
                #expect(try await p.get("/v3/processes/\(process)/stats?x=1", alice.token).status == .badRequest)
                let viaApp = try await p.get("/v3/apps/\(app)/processes/web/stats", alice.token)
                #expect(viaApp.status == .ok && viaApp.resources.count == 1)
                // A space auditor reads stats too.
                let (auditor, auditorToken) = try await p.user("carol")
                try await p.role("organization_user", user: auditor, org: alice.org)
                try await p.role("space_auditor", user: auditor, space: alice.space)
                #expect(try await p.get("/v3/processes/\(process)/stats", auditorToken).status == .ok)
            }
        }
    }
}
