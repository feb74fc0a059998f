import Foundation
import HealthManager
import PlatformModels
import Testing

@testable import CloudController

extension Platform {
    /// A route-table poll with the router's query parameters (`query` already encoded).
    func routerPoll(_ query: String, wait: Int = 0) async throws -> Reply {
        try await component(.get, "/internal/v1/routes?wait=\(wait)" + (query.isEmpty ? "" : "&" + query))
    }

    func routers(_ token: String? = nil) async throws -> [RouterResource] {
        let r = try await get("/v3/admin/routers", token ?? adminToken)
        guard r.status == .ok else { throw TestFailure("routers: \(r.status) \(r.body)") }
        return try JSONDecoder().decode(ListResponse<RouterResource>.self, from: Data(r.body.utf8)).resources
    }
}

extension ControllerIntegration {
    /// Routers named in route-table polls: recorded, listed for admins, in the health snapshot.
    @Suite(.serialized, .timeLimit(.minutes(2))) struct RouterRegistry {
        @Test func aPollThatNamesARouterRecordsItAndAdminsSeeIt() async throws {
            try await Platform.run { p in
                let current = try await p.routeTable().version
                #expect(try await p.routers().isEmpty)
                let poll = try await p.routerPoll(
                    "router_id=router-a&table_version=\(current)&table_age_seconds=3&version=0.1.0&listen=10.0.0.5%3A8080")
                #expect(poll.status == .ok)
                #expect(try JSONDecoder().decode(RouteTable.self, from: Data(poll.body.utf8)).version == current)

                var routers = try await p.routers()
                #expect(routers.count == 1)
                let router = try #require(routers.first)
                #expect(router.id == "router-a" && router.version == "0.1.0" && router.listenAddress == "10.0.0.5:8080")
                #expect(router.tableVersion == current && router.tableAgeSeconds == 3 && router.currentTableVersion == current)
                #expect(router.lastSeenAt.hasSuffix("Z"))
                let raw = try await p.get("/v3/admin/routers", p.adminToken)
                #expect(raw.resources.first?["current_table_version"] as? Int == current)
                #expect(raw.json["pagination"] != nil)

                // The parameters as the router's model lists them, encoded as its client does.
                let report = RouterPollReport(routerID: "router-b", tableVersion: nil, tableAgeSeconds: nil, version: PlatformVersion.current,
                                              listen: "[2001:db8::1]:8080")
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "-._~")
                let query = report.queryItems.map { "\($0.name)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }
                #expect(try await p.routerPoll(query.joined(separator: "&")).status == .ok)
                // A poll that names no router (an older router) changes nothing.
                #expect(try await p.routerPoll("").status == .ok)
                routers = try await p.routers()
                #expect(routers.map(\.id) == ["router-a", "router-b"])
                #expect(routers[1].tableVersion == nil && routers[1].tableAgeSeconds == nil && routers[1].listenAddress == "[2001:db8::1]:8080")

                // The next poll updates the row; filters and order work as in the other admin lists.
                #expect(try await p.routerPoll("router_id=router-a&table_version=\(current)&table_age_seconds=0&version=0.2.0").status == .ok)
                let updated = try #require(try await p.routers().first { $0.id == "router-a" })
                #expect(updated.tableAgeSeconds == 0 && updated.version == "0.2.0" && updated.listenAddress == "")
                #expect(try await p.get("/v3/admin/routers?ids=router-b", p.adminToken).resources.count == 1)
                #expect(try await p.get("/v3/admin/routers?order_by=-last_seen_at", p.adminToken).status == .ok)
                #expect(try await p.get("/v3/admin/routers?order_by=bogus", p.adminToken).status == .badRequest)

                // Admins only.
                let t = try await p.tenant("alice")
                let denied = try await p.get("/v3/admin/routers", t.token)
                #expect(denied.status == .forbidden && denied.errorTitle == "CF-NotAuthorized")
                #expect(try await p.call(.get, "/v3/admin/routers", token: nil).status == .unauthorized)
            }
        }

        @Test func badParametersAre400AndRecordNothing() async throws {
            try await Platform.run { p in
                let cases: [(String, String)] = [
                    ("router_id=Router_A", "router_id 'Router_A' is invalid"),
                    ("router_id=", "router_id '' is invalid"),
                    ("router_id=-a", "is invalid"),
                    ("router_id=\(String(repeating: "a", count: 64))", "is invalid"),
                    ("router_id=r1&table_version=-1", "table_version must be an integer between 0 and"),
                    ("router_id=r1&table_version=x", "table_version must be an integer"),
                    ("router_id=r1&table_age_seconds=-5", "table_age_seconds must be an integer between 0 and 315360000"),
                    ("router_id=r1&table_age_seconds=315360001", "table_age_seconds must be an integer between 0 and 315360000"),
                    ("router_id=r1&version=0.1%200", "version must be at most 100 printable ASCII characters"),
                    ("router_id=r1&version=\(String(repeating: "1", count: 101))", "version must be at most 100"),
                    ("router_id=r1&listen=localhost", "listen must be host:port"),
                    ("router_id=r1&listen=10.0.0.1%3A0", "listen must be host:port"),
                    ("router_id=r1&listen=10.0.0.1%3A70000", "listen must be host:port"),
                    ("router_id=r1&listen=%3A8080", "listen must be host:port"),
                    ("router_id=r1&listen=%5Bzz%5D%3A80", "listen must be host:port"),
                    ("router_id=r1&listen=a%20b%3A80", "listen must be host:port"),
                    ("table_version=3&listen=a%3A80", "table_version, listen describe a router: router_id is required with them"),
                    ("router_id=r1&router_id=r2", "'router_id' is given more than once"),
                    ("router_id=r1&colour=blue", "Unknown query parameter(s): 'colour'"),
                ]
                for (query, detail) in cases {
                    let r = try await p.routerPoll(query)
                    #expect(r.status == .badRequest, "\(query)")
                    #expect(r.errorTitle == "CF-BadQueryParameter", "\(query)")
                    #expect(r.errorDetail.contains(detail), "\(query): \(r.errorDetail)")
                }
                #expect(try await p.routers().isEmpty)
                // The limits themselves are fine.
                #expect(try await p.routerPoll("router_id=\(String(repeating: "a", count: 63))&table_age_seconds=315360000&listen=h%3A65535").status == .ok)
            }
        }

        @Test func theHealthSnapshotHoldsTheRoutersAndASilentOneRaisesTheAlert() async throws {
            try await Platform.run { p in
                let current = try await p.routeTable().version
                #expect(try await p.healthState().routers.isEmpty)
                #expect(try await p.routerPoll("router_id=router-h&table_version=\(current)&table_age_seconds=2").status == .ok)
                var snapshot = try await p.healthState()
                let router = try #require(snapshot.routers.first)
                #expect(snapshot.routers.count == 1)
                #expect(router.id == "router-h" && router.tableVersion == current && router.tableAgeSeconds == 2)
                #expect(abs(router.lastSeen - snapshot.asOf) < 10)
                #expect(AlertRules().evaluate(snapshot, now: snapshot.asOf).filter { $0.name == "RouterTableStale" }.isEmpty)

                // Two minutes without a poll: stale.
                _ = try await p.pool.query("UPDATE routers SET last_seen_at = now() - interval '2 minutes', poll_deadline = NULL")
                snapshot = try await p.healthState()
                let alerts = AlertRules().evaluate(snapshot, now: snapshot.asOf).filter { $0.name == "RouterTableStale" }
                #expect(alerts.map { $0.labels["router_id"] } == ["router-h"])

                // A router parked in a long-poll counts as seen until its wait ends.
                _ = try await p.pool.query("UPDATE routers SET last_seen_at = now() - interval '2 minutes', poll_deadline = now() + interval '20 seconds'")
                snapshot = try await p.healthState()
                #expect(try #require(snapshot.routers.first).lastSeen >= snapshot.asOf - 1)
                #expect(AlertRules().evaluate(snapshot, now: snapshot.asOf).filter { $0.name == "RouterTableStale" }.isEmpty)

                // A poll that would park records its deadline before waiting: seen well within its wait.
                let clock = ContinuousClock()
                let parkedAt = clock.now
                async let parked = p.routerPoll("router_id=router-p&after=\(current)", wait: 6)
                var seen: RouterResource?
                while seen == nil, clock.now - parkedAt < .seconds(5) {
                    try await Task.sleep(for: .milliseconds(50))
                    seen = try await p.routers().first { $0.id == "router-p" }
                }
                #expect(seen != nil, "recorded before the wait ends")
                #expect(try await parked.status == .ok)
            }
        }

        @Test func routersSilentForADayAreForgottenOnTheNextPoll() async throws {
            try await Platform.run { p in
                #expect(try await p.routerPoll("router_id=router-old").status == .ok)
                #expect(try await p.routerPoll("router_id=router-new").status == .ok)
                _ = try await p.pool.query("UPDATE routers SET last_seen_at = now() - interval '25 hours' WHERE id = 'router-old'")
                #expect(try await p.routers().count == 2)
                #expect(try await p.routerPoll("router_id=router-new").status == .ok)
                #expect(try await p.routers().map(\.id) == ["router-new"])
                // The router itself coming back after a day is just recorded again.
                _ = try await p.pool.query("UPDATE routers SET last_seen_at = now() - interval '25 hours'")
                #expect(try await p.routerPoll("router_id=router-new").status == .ok)
                #expect(try await p.routers().map(\.id) == ["router-new"])
            }
        }
    }
}
