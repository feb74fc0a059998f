import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresStore
import PlatformModels
import HTTPTypes
import Testing

@testable import CloudController

extension ControllerIntegration {
    /// SECURITY.md F1, F2, F3, F7: tenants cannot see, touch, hijack or escalate.
    @Suite struct TenantIsolation {
        @Test func otherTenantsObjectsAre404ForEveryVerbAndAbsentFromLists() async throws {
            try await Platform.run { p in
                let a = try await p.tenant("alice")
                let b = try await p.tenant("bob")
                let app = try await p.app("secret-app", space: a.space, token: a.token)
                let route = try await p.route("alice", space: a.space, token: a.token)
                #expect(route.status == .created)
                let process = try await p.get("/v3/apps/\(app)/processes/web", a.token).guid
                let roles = try await p.get("/v3/roles?space_guids=\(a.space)", a.token).resources.compactMap { $0["guid"] as? String }
                #expect(!roles.isEmpty)
                let privateDomain = try await p.post("/v3/domains", p.adminToken,
                                                     #"{"name":"alice.example","relationships":{"organization":{"data":{"guid":"\#(a.org)"}}}}"#)
                #expect(privateDomain.status == .created)

                let probes: [(HTTPRequest.Method, String, String?)] = [
                    (.get, "/v3/organizations/\(a.org)", nil), (.patch, "/v3/organizations/\(a.org)", #"{"name":"x"}"#),
                    (.delete, "/v3/organizations/\(a.org)", nil),
                    (.get, "/v3/spaces/\(a.space)", nil), (.patch, "/v3/spaces/\(a.space)", #"{"name":"x"}"#),
                    (.delete, "/v3/spaces/\(a.space)", nil),
                    (.get, "/v3/apps/\(app)", nil), (.patch, "/v3/apps/\(app)", #"{"name":"x"}"#), (.delete, "/v3/apps/\(app)", nil),
                    (.post, "/v3/apps/\(app)/actions/start", "{}"), (.post, "/v3/apps/\(app)/actions/stop", "{}"),
                    (.post, "/v3/apps/\(app)/actions/restart", "{}"),
                    (.get, "/v3/apps/\(app)/environment_variables", nil),
                    (.patch, "/v3/apps/\(app)/environment_variables", #"{"var":{"X":"1"}}"#),
                    (.get, "/v3/apps/\(app)/processes", nil), (.get, "/v3/apps/\(app)/routes", nil),
                    (.get, "/v3/processes/\(process)", nil), (.patch, "/v3/processes/\(process)", #"{"command":"x"}"#),
                    (.post, "/v3/processes/\(process)/actions/scale", #"{"instances":2}"#),
                    (.post, "/v3/apps/\(app)/processes/web/actions/scale", #"{"instances":2}"#),
                    (.get, "/v3/routes/\(route.guid)", nil), (.delete, "/v3/routes/\(route.guid)", nil),
                    (.get, "/v3/routes/\(route.guid)/destinations", nil),
                    (.post, "/v3/routes/\(route.guid)/destinations", #"{"destinations":[{"app":{"guid":"\#(app)"}}]}"#),
                    (.get, "/v3/roles/\(roles[0])", nil), (.delete, "/v3/roles/\(roles[0])", nil),
                    (.get, "/v3/domains/\(privateDomain.guid)", nil), (.delete, "/v3/domains/\(privateDomain.guid)", nil),
                    (.get, "/v3/users/\(a.user)", nil),
                ]
                for (method, path, body) in probes {
                    let r = try await p.call(method, path, token: b.token, json: body)
                    #expect(r.status == .notFound, "\(method) \(path): \(r.status) \(r.body)")
                    #expect(r.errorCode == 10010, "\(method) \(path)")
                }
                // Nothing of alice's appears in bob's lists.
                for list in ["/v3/organizations", "/v3/spaces", "/v3/apps", "/v3/processes", "/v3/routes", "/v3/roles", "/v3/domains",
                             "/v3/users", "/v3/audit_events"] {
                    let r = try await p.get(list, b.token)
                    #expect(r.status == .ok, "\(list)")
                    for id in [a.org, a.space, app, process, route.guid, privateDomain.guid, a.user] + roles {
                        #expect(!r.body.contains(id), "\(list) leaks \(id)")
                    }
                }
                // Creating inside alice's space is refused without revealing it.
                let intoSpace = try await p.post("/v3/apps", b.token, #"{"name":"x","relationships":{"space":{"data":{"guid":"\#(a.space)"}}}}"#)
                #expect(intoSpace.status == .unprocessableContent)
                // And alice still has everything.
                #expect(try await p.get("/v3/apps/\(app)", a.token).json["name"] as? String == "secret-app")
                #expect(try await p.get("/v3/apps/\(app)", a.token).json["state"] as? String == "STOPPED")
            }
        }

        /// A client can tell a taken route before it creates anything; the answer names nobody.
        @Test func routeReservationsSayWhetherARouteIsTaken() async throws {
            try await Platform.run { p in
                let a = try await p.tenant("alice")
                let b = try await p.tenant("bob")
                let domain = try await p.defaultDomainGuid
                #expect(try await p.route("shop", space: a.space, token: a.token).status == .created)
                #expect(try await p.route("shop", space: a.space, token: a.token, path: "/api").status == .created)
                let reservations = "/v3/domains/\(domain)/route_reservations"
                for (query, taken) in [("host=shop", true), ("host=SHOP", true), ("host=shop&path=/api", true),
                                       ("host=shop&path=/other", false), ("host=free", false), ("", false)] {
                    let r = try await p.get("\(reservations)?\(query)", b.token)
                    #expect(r.status == .ok, "\(query): \(r.body)")
                    #expect(r.json["matching_route"] as? Bool == taken, "\(query): \(r.body)")
                    #expect(!r.body.contains(a.space) && !r.body.contains(a.org), "\(query) leaks alice's space")
                }
                // Bad input: unknown parameter, malformed host or path, unknown or invisible domain.
                #expect(try await p.get("\(reservations)?host=shop&space=x", b.token).status == .badRequest)
                #expect(try await p.get("\(reservations)?host=sh%20op", b.token).status == .unprocessableContent)
                #expect(try await p.get("\(reservations)?host=shop&path=api", b.token).status == .unprocessableContent)
                #expect(try await p.get("/v3/domains/\(UUID().uuidString.lowercased())/route_reservations?host=shop", b.token).status == .notFound)
                let privateDomain = try await p.post("/v3/domains", p.adminToken,
                    #"{"name":"alice.example","relationships":{"organization":{"data":{"guid":"\#(a.org)"}}}}"#)
                #expect(privateDomain.status == .created)
                let hidden = try #require(privateDomain.json["guid"] as? String)
                #expect(try await p.get("/v3/domains/\(hidden)/route_reservations?host=x", b.token).status == .notFound)
                #expect(try await p.get("/v3/domains/\(hidden)/route_reservations?host=x", a.token).status == .ok)
                #expect(try await p.call(.get, "\(reservations)?host=shop", token: nil).status == .unauthorized)
            }
        }

        @Test func routeHijackIsRefusedByTheDatabase() async throws {
            try await Platform.run { p in
                let a = try await p.tenant("alice")
                let b = try await p.tenant("bob")
                #expect(try await p.route("shop", space: a.space, token: a.token).status == .created)
                // Same host, with or without another path: taken.
                let same = try await p.route("shop", space: b.space, token: b.token)
                #expect(same.status == .unprocessableContent)
                let otherPath = try await p.route("shop", space: b.space, token: b.token, path: "/admin")
                #expect(otherPath.status == .unprocessableContent)
                // Alice herself may add a path under her host.
                #expect(try await p.route("shop", space: a.space, token: a.token, path: "/api").status == .created)
                // Mapping alice's app to bob's route is refused (the app is not in the route's space).
                let aliceApp = try await p.app("a1", space: a.space, token: a.token)
                let bobRoute = try await p.route("bobshop", space: b.space, token: b.token)
                let map = try await p.post("/v3/routes/\(bobRoute.guid)/destinations", b.token,
                                           #"{"destinations":[{"app":{"guid":"\#(aliceApp)"}}]}"#)
                #expect(map.status == .unprocessableContent)
                // The constraint holds even if application code were bypassed.
                let domain = try await p.defaultDomainGuid
                await #expect(throws: (any Error).self) {
                    try await p.pool.query("INSERT INTO route_hosts(domain_guid, host, space_guid) VALUES ($1, 'shop', $2)", [domain, b.space])
                }
                await #expect(throws: (any Error).self) {
                    try await p.pool.query(
                        "INSERT INTO routes(guid, host, path, domain_guid, space_guid) VALUES ($1, 'nobody', '', $2, $3)",
                        [UUID().uuidString, domain, b.space])
                }
            }
        }

        @Test func auditorsCannotReadEnvironmentOrChangeApps() async throws {
            try await Platform.run { p in
                let a = try await p.tenant("alice")
                let (auditor, auditorToken) = try await p.user("audrey")
                try await p.role("organization_user", user: auditor, org: a.org)
                try await p.role("space_auditor", user: auditor, space: a.space)
                let app = try await p.app("a", space: a.space, token: a.token)
                _ = try await p.patch("/v3/apps/\(app)/environment_variables", a.token, #"{"var":{"DB_PASSWORD":"hunter2"}}"#)
                #expect(try await p.get("/v3/apps/\(app)", auditorToken).status == .ok)
                let env = try await p.get("/v3/apps/\(app)/environment_variables", auditorToken)
                #expect(env.status == .forbidden)
                #expect(!env.body.contains("hunter2"))
                #expect(try await p.post("/v3/apps/\(app)/actions/start", auditorToken, "{}").status == .forbidden)
                #expect(try await p.delete("/v3/apps/\(app)", auditorToken).status == .forbidden)
            }
        }

        @Test func spaceDeveloperCannotEscalate() async throws {
            try await Platform.run { p in
                let a = try await p.tenant("dev")
                let (other, _) = try await p.user("other")
                let checks: [(String, String)] = [
                    ("/v3/organizations", #"{"name":"mine"}"#),
                    ("/v3/domains", #"{"name":"evil.example"}"#),
                    ("/v3/stacks", #"{"name":"evil"}"#),
                    ("/v3/users", #"{"username":"sneaky","password":"password123"}"#),
                    ("/v3/spaces", #"{"name":"more","relationships":{"organization":{"data":{"guid":"\#(a.org)"}}}}"#),
                    ("/v3/roles", #"{"type":"organization_manager","relationships":{"user":{"data":{"guid":"\#(a.user)"}},"organization":{"data":{"guid":"\#(a.org)"}}}}"#),
                    ("/v3/roles", #"{"type":"organization_user","relationships":{"user":{"data":{"guid":"\#(other)"}},"organization":{"data":{"guid":"\#(a.org)"}}}}"#),
                    ("/v3/roles", #"{"type":"space_manager","relationships":{"user":{"data":{"guid":"\#(a.user)"}},"space":{"data":{"guid":"\#(a.space)"}}}}"#),
                ]
                for (path, body) in checks {
                    let r = try await p.post(path, a.token, body)
                    #expect(r.status == .forbidden, "\(path) \(body): \(r.status) \(r.body)")
                    #expect(r.errorCode == 10003)
                }
                #expect(try await p.patch("/v3/organizations/\(a.org)", a.token, #"{"name":"renamed"}"#).status == .forbidden)
                #expect(try await p.delete("/v3/organizations/\(a.org)", a.token).status == .forbidden)
                #expect(try await p.patch("/v3/users/\(other)", a.token, #"{"password":"taken-over-1"}"#).status == .notFound)
                // An org manager can do what the developer could not, inside their own org only.
                let (manager, managerToken) = try await p.user("boss")
                try await p.role("organization_manager", user: manager, org: a.org)
                #expect(try await p.role("organization_user", user: other, org: a.org, token: managerToken).status == .created)
                #expect(try await p.role("space_developer", user: other, space: a.space, token: managerToken).status == .created)
                #expect(try await p.post("/v3/spaces", managerToken,
                                         #"{"name":"more","relationships":{"organization":{"data":{"guid":"\#(a.org)"}}}}"#).status == .created)
                // Space roles need org membership first.
                let (outsider, _) = try await p.user("outsider")
                let noMember = try await p.role("space_developer", user: outsider, space: a.space, token: managerToken)
                #expect(noMember.status == .unprocessableContent)
            }
        }
    }

    @Suite struct Operations {
        @Test func migrationsRunTwiceAreANoOp() async throws {
            try await Platform.run { p in
                let again = try await CloudController.prepareDatabase(pool: p.pool, config: p.config, logger: testLogger)
                #expect(again.isEmpty)
                let versions = try await p.pool.query("SELECT count(*) AS n FROM schema_migrations")
                #expect(try versions.rows[0].decode("n", as: Int.self) == Schema.migrations.count)
                let domains = try await p.pool.query("SELECT count(*) AS n FROM domains")
                #expect(try domains.rows[0].decode("n", as: Int.self) == 1)
            }
        }

        @Test func internalAPIOnlyTakesTheComponentCredential() async throws {
            try await Platform.run { p in
                #expect(try await p.call(.get, "/internal/v1/info", token: nil).status == .unauthorized)
                let user = try await p.call(.get, "/internal/v1/info", token: p.adminToken)
                #expect(user.status == .unauthorized)
                let wrong = try await p.call(.get, "/internal/v1/info", token: nil, headers: [.authorization: "component nope"])
                #expect(wrong.status == .unauthorized)
                let ok = try await p.call(.get, "/internal/v1/info", token: nil, headers: [
                    .authorization: "component \(p.config.internalCredential)", HTTPField.Name("X-Cf-Like-Component")!: "router",
                ])
                #expect(ok.status == .ok)
                #expect(ok.json["component"] as? String == "router")
                #expect(ok.json["schema_version"] as? Int == Schema.migrations.count)
            }
        }

        @Test func metricsCountRequests() async throws {
            try await Platform.run { p in
                _ = try await p.get("/v3/apps", p.adminToken)
                let metrics = try await p.call(.get, "/metrics", token: nil)
                #expect(metrics.status == .ok)
                #expect(metrics.body.contains("cflike_http_requests_total"))
                #expect(metrics.body.contains("cflike_http_request_duration_seconds"))
                // Each family says what it counts.
                #expect(metrics.body.contains("# HELP cflike_http_requests_total API requests answered"))
                #expect(metrics.body.contains("# HELP cflike_http_request_duration_seconds Time to answer"))
                #expect(metrics.body.contains("cflike_http_requests_total{method=\"GET\",route=\"/v3/apps\",status=\"200\"}"))
            }
        }

        @Test func unknownPathsAndMethodsAreCFErrors() async throws {
            try await Platform.run { p in
                let r = try await p.get("/v3/nothing-here", p.adminToken)
                #expect(r.status == .notFound)
                #expect(r.errorTitle == "CF-NotFound")
            }
        }
    }
}

extension ControllerIntegration {
    /// SECURITY.md G1: with the database unreachable the API answers 503, never 500.
    @Suite struct DatabaseOutage {
        @Test func databaseDownIs503() async throws {
            let home = FileManager.default.temporaryDirectory.appendingPathComponent("cc-down-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: home.appendingPathComponent("var/secrets"), withIntermediateDirectories: true)
            try "test-signing-key-0123456789abcdefghijklmnopqrstuvwxyz".write(
                to: home.appendingPathComponent("var/secrets/token-signing-key"), atomically: true, encoding: .utf8)
            try "test-internal-credential-0123456789".write(
                to: home.appendingPathComponent("var/secrets/internal-credential"), atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: home) }
            // Port 1 on loopback: nothing listens, so every connection attempt is refused.
            let env = ["CFLIKE_PLATFORM_HOME": home.path,
                       "CFLIKE_CONTROLLER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"]
            let config = try ControllerConfig(document: try ConfigDocument(path: nil, environment: env))
            let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: config.databaseConninfo, poolSize: 2),
                                    threadPool: sharedThreadPool, logger: testLogger)
            let router = CloudController.buildRouter(config: config, pool: pool, threadPool: sharedThreadPool, logger: testLogger)
            try await Application(router: router, logger: testLogger).test(.router) { client in
                let health = try await client.execute(uri: "/healthz", method: .get)
                #expect(health.status == .serviceUnavailable)
                let signer = JWTSigner(secret: config.tokenSigningKey)
                let now = Int(Date().timeIntervalSince1970)
                let token = try signer.sign(.init(
                    jti: "j", sub: UUID().uuidString.lowercased(), userID: "u", userName: "u", scope: [], clientID: "cf", cid: "cf",
                    iat: now, exp: now + 60, iss: config.externalURL + "/oauth/token", aud: [], origin: "uaa", grantType: "password"))
                let list = try await client.execute(uri: "/v3/apps", method: .get, headers: [.authorization: "bearer \(token)"])
                #expect(list.status == .serviceUnavailable)
                #expect(String(buffer: list.body).contains("10015"))
                let login = try await client.execute(
                    uri: "/oauth/token", method: .post,
                    headers: [.authorization: "Basic " + Data("cf:".utf8).base64EncodedString(),
                              .contentType: "application/x-www-form-urlencoded"],
                    body: ByteBuffer(string: "grant_type=password&username=a&password=b"))
                #expect(login.status == .serviceUnavailable)
            }
            await pool.shutdown()
        }
    }
}
