import Foundation
import HTTPTypes
import Testing

@testable import CloudController

extension ControllerIntegration {
    @Suite struct Resources {
        @Test func rootAndInfoNeedNoAuth() async throws {
            try await Platform.run { p in
                let root = try await p.call(.get, "/", token: nil)
                #expect(root.status == .ok)
                let links = root.json["links"] as? [String: Any] ?? [:]
                let v3 = links["cloud_controller_v3"] as? [String: Any]
                #expect(v3?["href"] as? String == "\(Platform.baseURL)/v3")
                #expect((v3?["meta"] as? [String: Any])?["version"] != nil)
                for key in ["self", "login", "uaa"] { #expect((links[key] as? [String: Any])?["href"] != nil, "\(key)") }
                #expect(!root.body.contains("null"))
                let info = try await p.call(.get, "/v3/info", token: nil)
                #expect(info.status == .ok)
                #expect(info.json["name"] as? String == "cf-like")
                #expect(try await p.call(.get, "/v3", token: nil).status == .ok)
                let health = try await p.call(.get, "/healthz", token: nil)
                #expect(health.status == .ok)
                #expect(health.headers[HTTPField.Name("X-Vcap-Request-Id")!] != nil)
            }
        }

        @Test func orgSpaceAppRouteLifecycle() async throws {
            try await Platform.run { p in
                let org = try await p.org("acme")
                let space = try await p.space("dev", org: org)
                let app = try await p.app("web", space: space, token: p.adminToken)
                // The web process exists with defaults.
                let procs = try await p.get("/v3/apps/\(app)/processes", p.adminToken)
                #expect(procs.status == .ok)
                #expect(procs.resources.first?["type"] as? String == "web")
                #expect(procs.resources.first?["memory_in_mb"] as? Int == p.config.defaultMemoryMB)
                #expect(procs.body.contains(#""command":null"#))
                // Start / stop / restart return the app with its state (starting needs a droplet).
                try await p.stagedDroplet(app: app, token: p.adminToken)
                let started = try await p.post("/v3/apps/\(app)/actions/start", p.adminToken, "{}")
                #expect(started.json["state"] as? String == "STARTED")
                #expect(try await p.post("/v3/apps/\(app)/actions/stop", p.adminToken, "{}").json["state"] as? String == "STOPPED")
                #expect(try await p.post("/v3/apps/\(app)/actions/restart", p.adminToken, "{}").json["state"] as? String == "STARTED")
                let links = try await p.get("/v3/apps/\(app)", p.adminToken).json["links"] as? [String: Any]
                #expect((links?["start"] as? [String: Any])?["method"] as? String == "POST")
                // Scale.
                let scaled = try await p.post("/v3/apps/\(app)/processes/web/actions/scale", p.adminToken,
                                              #"{"instances":3,"memory_in_mb":512}"#)
                #expect(scaled.status == .accepted)
                #expect(scaled.json["instances"] as? Int == 3)
                #expect(scaled.json["memory_in_mb"] as? Int == 512)
                // Health check update.
                let pg = procs.resources.first?["guid"] as? String ?? ""
                let hc = try await p.patch("/v3/processes/\(pg)", p.adminToken, #"{"health_check":{"type":"http","data":{"endpoint":"/health"}}}"#)
                #expect(hc.status == .ok)
                #expect((hc.json["health_check"] as? [String: Any])?["type"] as? String == "http")
                // Env vars: set, merge, unset with null.
                let env = try await p.patch("/v3/apps/\(app)/environment_variables", p.adminToken, #"{"var":{"A":"1","B":"2"}}"#)
                #expect((env.json["var"] as? [String: String]) == ["A": "1", "B": "2"])
                let env2 = try await p.patch("/v3/apps/\(app)/environment_variables", p.adminToken, #"{"var":{"A":null}}"#)
                #expect((env2.json["var"] as? [String: String]) == ["B": "2"])
                // Routes and destinations.
                let route = try await p.route("web", space: space, token: p.adminToken)
                #expect(route.status == .created)
                #expect(route.json["url"] as? String == "web.\(p.config.defaultDomain)")
                let mapped = try await p.post("/v3/routes/\(route.guid)/destinations", p.adminToken,
                                              #"{"destinations":[{"app":{"guid":"\#(app)"}}]}"#)
                #expect(mapped.status == .ok)
                let dests = mapped.json["destinations"] as? [[String: Any]] ?? []
                #expect(dests.count == 1)
                let appRoutes = try await p.get("/v3/apps/\(app)/routes", p.adminToken)
                #expect(appRoutes.resources.count == 1)
                let dest = dests.first?["guid"] as? String ?? ""
                #expect(try await p.delete("/v3/routes/\(route.guid)/destinations/\(dest)", p.adminToken).status == .noContent)
                // Rename and metadata labels.
                let renamed = try await p.patch("/v3/apps/\(app)", p.adminToken, #"{"name":"web2","metadata":{"labels":{"tier":"front"}}}"#)
                #expect(renamed.json["name"] as? String == "web2")
                #expect(try await p.get("/v3/apps?label_selector=tier=front", p.adminToken).names == ["web2"])
                #expect(try await p.get("/v3/apps?label_selector=tier!=front", p.adminToken).names == [])
                #expect(try await p.get("/v3/apps?label_selector=!tier", p.adminToken).names == [])
                #expect(try await p.get("/v3/apps?label_selector=tier%20in%20(back,front)", p.adminToken).names == ["web2"])
                // Delete: 202 + a job, then 404; routes stay (CF keeps routes), destinations go.
                let deleted = try await p.delete("/v3/apps/\(app)", p.adminToken)
                #expect(deleted.status == .accepted)
                let job = try #require(deleted.headers[.location])
                #expect(job.hasPrefix("\(Platform.baseURL)/v3/jobs/"))
                let jobPath = String(job.dropFirst(Platform.baseURL.count))
                #expect(try await p.get(jobPath, p.adminToken).json["state"] as? String == "COMPLETE")
                #expect(try await p.get("/v3/apps/\(app)", p.adminToken).status == .notFound)
                #expect(try await p.delete("/v3/routes/\(route.guid)", p.adminToken).status == .accepted)
                // Every change left an audit event.
                let events = try await p.get("/v3/audit_events?target_guids=\(app)&per_page=100", p.adminToken)
                let types = Set(events.resources.compactMap { $0["type"] as? String })
                for t in ["audit.app.create", "audit.app.start", "audit.app.stop", "audit.app.restart", "audit.app.process.scale",
                          "audit.app.update", "audit.app.map-route", "audit.app.unmap-route", "audit.app.delete-request"] {
                    #expect(types.contains(t), "missing \(t)")
                }
                // Env var values never reach audit events.
                #expect(!events.body.contains(#""1""#) || !events.body.contains("\"A\":\"1\""))
            }
        }

        @Test func paginationKeepsFiltersAndOrders() async throws {
            try await Platform.run { p in
                let org = try await p.org("pager")
                let space = try await p.space("s", org: org)
                for i in 0..<7 { _ = try await p.app(String(format: "app-%02d", i), space: space, token: p.adminToken) }
                let first = try await p.get("/v3/apps?per_page=3&space_guids=\(space)&order_by=-name", p.adminToken)
                #expect(first.status == .ok)
                #expect(first.names == ["app-06", "app-05", "app-04"])
                #expect(first.pagination["total_results"] as? Int == 7)
                #expect(first.pagination["total_pages"] as? Int == 3)
                #expect(first.body.contains(#""previous":null"#))
                let next = try #require(first.link("next"))
                #expect(next.hasPrefix(Platform.baseURL + "/v3/apps?"))
                #expect(next.contains("per_page=3"))
                #expect(next.contains("space_guids=\(space)"))
                #expect(next.contains("order_by=-name"))
                let second = try await p.get(String(next.dropFirst(Platform.baseURL.count)), p.adminToken)
                #expect(second.names == ["app-03", "app-02", "app-01"])
                let last = try await p.get(String(try #require(second.link("next")).dropFirst(Platform.baseURL.count)), p.adminToken)
                #expect(last.names == ["app-00"])
                #expect(last.body.contains(#""next":null"#))
                // Filters: names (comma list, percent-decoded first) and guids.
                let some = try await p.get("/v3/apps?names=app-01%2Capp-03&order_by=name", p.adminToken)
                #expect(some.names == ["app-01", "app-03"])
                let beyond = try await p.get("/v3/apps?page=9&per_page=3", p.adminToken)
                #expect(beyond.status == .ok)
                #expect(beyond.resources.isEmpty)
                #expect(beyond.pagination["total_results"] as? Int == 7)
                let ordered = try await p.get("/v3/spaces?order_by=created_at", p.adminToken)
                #expect(ordered.status == .ok)
            }
        }

        @Test func sqlInjectionShapedQueriesAre400OrInert() async throws {
            try await Platform.run { p in
                for bad in ["order_by=name;drop%20table%20apps", "order_by=guid", "page=-1", "page=0", "per_page=1e9", "per_page=5001",
                            "per_page=0", "guids=not-a-guid", "label_selector=a%20b%20c", "label_selector=%21%21x",
                            "unknown=1", "names=%ZZ", "names=a&names=b", "space_guids=1%27%20OR%20%271%27=%271"] {
                    let r = try await p.get("/v3/apps?\(bad)", p.adminToken)
                    #expect(r.status == .badRequest, "\(bad): \(r.status) \(r.body)")
                    #expect(r.errorCode == 10005, "\(bad)")
                }
                // Quotes are data, not SQL.
                let quoted = try await p.get("/v3/apps?names=a%27,b", p.adminToken)
                #expect(quoted.status == .ok)
                #expect(quoted.resources.isEmpty)
                let tables = try await p.pool.query("SELECT count(*) AS n FROM apps")
                #expect(try tables.rows[0].decode("n", as: Int.self) == 0)
            }
        }

        @Test func badBodiesAre4xxAndChangeNothing() async throws {
            try await Platform.run { p in
                let before = try await p.get("/v3/organizations", p.adminToken).resources.count
                let malformed = try await p.post("/v3/organizations", p.adminToken, #"{"name": "#)
                #expect(malformed.status == .badRequest)
                #expect(malformed.errorTitle == "CF-MessageParseError")
                let wrongType = try await p.post("/v3/organizations", p.adminToken, #"{"name": 42}"#)
                #expect(wrongType.status == .unprocessableContent)
                #expect(wrongType.errorDetail.contains("name"))
                let unknown = try await p.post("/v3/organizations", p.adminToken, #"{"name":"x","color":"red"}"#)
                #expect(unknown.status == .unprocessableContent)
                #expect(unknown.errorDetail.contains("color"))
                let blank = try await p.post("/v3/organizations", p.adminToken, #"{"name":""}"#)
                #expect(blank.status == .unprocessableContent)
                let control = try await p.post("/v3/organizations", p.adminToken, #"{"name":"a\nb"}"#)
                #expect(control.status == .unprocessableContent)
                let notObject = try await p.post("/v3/organizations", p.adminToken, "[1,2]")
                #expect(notObject.status == .badRequest)
                let huge = String(repeating: "x", count: p.config.maxRequestBodyBytes + 10)
                let tooLarge = try await p.post("/v3/organizations", p.adminToken, #"{"name":"\#(huge)"}"#)
                #expect(tooLarge.status == .contentTooLarge)
                let org = try await p.org("dup")
                let duplicate = try await p.post("/v3/organizations", p.adminToken, #"{"name":"dup"}"#)
                #expect(duplicate.status == .unprocessableContent)
                let space = try await p.space("s", org: org)
                let app = try await p.app("a", space: space, token: p.adminToken)
                let badEnv = try await p.patch("/v3/apps/\(app)/environment_variables", p.adminToken, #"{"var":{"1BAD":"x"}}"#)
                #expect(badEnv.status == .unprocessableContent)
                let reserved = try await p.patch("/v3/apps/\(app)/environment_variables", p.adminToken, #"{"var":{"VCAP_SERVICES":"x"}}"#)
                #expect(reserved.status == .unprocessableContent)
                let bigEnv = String(repeating: "v", count: p.config.maxEnvironmentBytes)
                #expect(try await p.patch("/v3/apps/\(app)/environment_variables", p.adminToken, #"{"var":{"BIG":"\#(bigEnv)"}}"#).status
                        == .unprocessableContent)
                let tooMany = try await p.post("/v3/apps/\(app)/processes/web/actions/scale", p.adminToken, #"{"instances":10000}"#)
                #expect(tooMany.status == .unprocessableContent)
                let badHost = try await p.route("bad_host!", space: space, token: p.adminToken)
                #expect(badHost.status == .unprocessableContent)
                let badPath = try await p.route("okhost", space: space, token: p.adminToken, path: "/a/../b")
                #expect(badPath.status == .unprocessableContent)
                #expect(try await p.get("/v3/apps/not-a-guid", p.adminToken).status == .notFound)
                #expect(try await p.get("/v3/organizations", p.adminToken).resources.count == before + 1)
            }
        }
    }
}
