import Foundation
import HTTPTypes
import PlatformModels
import Testing

@testable import CloudController

extension ControllerIntegration {
    @Suite struct AgentRegistration {
        @Test func registerIsIdempotentAndHeartbeatsNeedARegisteredAgent() async throws {
            try await Platform.run { p in
                let first = try await p.registerAgent("dea-1.example")
                #expect(first.agentID == "dea-1.example")
                #expect(first.heartbeatIntervalSeconds == p.config.agentHeartbeatIntervalSeconds)
                let again = try await p.registerAgent("dea-1.example", memoryMB: 2048, host: "10.0.0.9")
                #expect(again.assignmentsVersion == first.assignmentsVersion, "nothing was assigned in between")
                let row = try await p.pool.query("SELECT host_address, capacity_memory_mb, state FROM agents").rows
                #expect(row.count == 1)
                #expect(row.first?["host_address"] == "10.0.0.9")
                #expect(row.first?["capacity_memory_mb"] == "2048")

                let ack = try await p.heartbeat("dea-1.example", [])
                #expect(ack.status == .ok)
                #expect(ack.json["assignments_version"] as? Int == first.assignmentsVersion)

                let unknown = try await p.heartbeat("dea-2", [])
                #expect(unknown.status == .notFound)
                #expect(unknown.errorDetail.contains("unknown agent"))
                #expect(try await p.component(.get, "/internal/v1/agents/dea-2/assignments").status == .notFound)
                #expect(try await p.component(.post, "/internal/v1/agents/dea-2/events", json: #"{"events":[]}"#).status == .notFound)
            }
        }

        @Test func badIdsAndBodiesChangeNothing() async throws {
            try await Platform.run { p in
                try await p.registerAgent("dea-1")
                let good = #"{"host_address":"10.0.0.1","capacity":{"memory_mb":1024,"disk_mb":1024,"instances":4},"stacks":["cflike-host"],"version":"1"}"#
                for id in ["DEA", "-dea", "dea_1", String(repeating: "a", count: 64), "d%20a", "dea%2F1"] {
                    let r = try await p.component(.put, "/internal/v1/agents/\(id)", json: good)
                    #expect(r.status == .unprocessableContent, "agent id \(id)")
                    #expect(r.errorDetail.contains("Agent id"), "agent id \(id): \(r.errorDetail)")
                }
                let cases: [(String, HTTPResponse.Status, String)] = [
                    ("{", .badRequest, "not valid JSON"),
                    ("[]", .badRequest, "JSON object"),
                    (#"{"host_address":"10.0.0.1"}"#, .unprocessableContent, "capacity"),
                    (#"{"host_address":"10.0.0.1","capacity":{"memory_mb":"a lot","disk_mb":1,"instances":1},"stacks":[],"version":"1"}"#,
                     .unprocessableContent, "capacity.memory_mb"),
                    (#"{"host_address":"10.0.0.1","capacity":{"memory_mb":-1,"disk_mb":1,"instances":1},"stacks":[],"version":"1"}"#,
                     .unprocessableContent, "capacity.memory_mb"),
                    (#"{"host_address":"a b","capacity":{"memory_mb":1,"disk_mb":1,"instances":1},"stacks":[],"version":"1"}"#,
                     .unprocessableContent, "host_address"),
                    (#"{"host_address":"h","capacity":{"memory_mb":1,"disk_mb":1,"instances":1},"stacks":["a\nb"],"version":"1"}"#,
                     .unprocessableContent, "stacks[0]"),
                    (#"{"host_address":"h","capacity":{"memory_mb":1,"disk_mb":1,"instances":1},"stacks":[],"version":"1","admin":true}"#,
                     .unprocessableContent, "'admin'"),
                ]
                for (body, status, words) in cases {
                    let r = try await p.component(.put, "/internal/v1/agents/dea-2", json: body)
                    #expect(r.status == status, "\(body)")
                    #expect(r.errorDetail.contains(words), "\(body): \(r.errorDetail)")
                }
                #expect(try await p.count("agents") == 1)

                // Heartbeat reports are validated just as strictly, each on its own: a bad one is
                // refused and named, and nothing of it is stored.
                let instance = UUID().uuidString.lowercased()
                let badReports = [
                    #"{"available":{"memory_mb":1,"disk_mb":1,"instances":1},"assignments_version":1,"instances":[{"instance_guid":"nope","process_guid":"\#(instance)","app_guid":"\#(instance)","index":0,"state":"RUNNING","container_port":8080,"since":1,"uptime":0,"usage":{"cpu":0,"mem":0,"disk":0},"mem_quota":0,"disk_quota":0,"crash_count":0}]}"#,
                    #"{"available":{"memory_mb":1,"disk_mb":1,"instances":1},"assignments_version":1,"instances":[{"instance_guid":"\#(instance)","process_guid":"\#(instance)","app_guid":"\#(instance)","index":0,"state":"HAPPY","container_port":8080,"since":1,"uptime":0,"usage":{"cpu":0,"mem":0,"disk":0},"mem_quota":0,"disk_quota":0,"crash_count":0}]}"#,
                    #"{"available":{"memory_mb":1,"disk_mb":1,"instances":1},"assignments_version":1,"instances":[{"instance_guid":"\#(instance)","process_guid":"\#(instance)","app_guid":"\#(instance)","index":0,"state":"RUNNING","host_port":70000,"container_port":8080,"since":1,"uptime":0,"usage":{"cpu":0,"mem":0,"disk":0},"mem_quota":0,"disk_quota":0,"crash_count":0}]}"#,
                ]
                let expected = ["instances[0].instance_guid", "instances[0].state", "instances[0].host_port"]
                for (body, words) in zip(badReports, expected) {
                    let r = try await p.component(.put, "/internal/v1/agents/dea-1/heartbeat", json: body)
                    #expect(r.status == .ok)
                    let rejected = try JSONDecoder().decode(HeartbeatAck.self, from: Data(r.body.utf8)).rejected ?? []
                    #expect(rejected.map(\.index) == [0])
                    #expect(rejected.first?.reason.contains(words) == true, "\(r.body)")
                }
                #expect(try await p.count("instance_reports") == 0)
                #expect(try await p.component(.get, "/internal/v1/agents/dea-1/assignments?wait=61").status == .badRequest)
                #expect(try await p.component(.get, "/internal/v1/agents/dea-1/assignments?after=x").status == .badRequest)
                #expect(try await p.component(.get, "/internal/v1/agents/dea-1/assignments?since=1").status == .badRequest)
            }
        }

        @Test func theInternalAPINeedsTheComponentCredential() async throws {
            try await Platform.run { p in
                let body = #"{"host_address":"10.0.0.1","capacity":{"memory_mb":1024,"disk_mb":1024,"instances":4},"stacks":[],"version":"1"}"#
                let asUser = try await p.call(.put, "/internal/v1/agents/dea-1", token: p.adminToken, json: body)
                #expect(asUser.status == .unauthorized, "a user token, even an admin's, never opens /internal/")
                let none = try await p.call(.put, "/internal/v1/agents/dea-1", token: nil, json: body)
                #expect(none.status == .unauthorized)
                let wrong = try await p.call(.put, "/internal/v1/agents/dea-1", token: nil, json: body,
                                             headers: [.authorization: "component not-the-credential-at-all"])
                #expect(wrong.status == .unauthorized)
                for path in ["/internal/v1/routes", "/internal/v1/agents/dea-1/assignments",
                             "/internal/v1/droplets/\(UUID().uuidString.lowercased())/download"] {
                    #expect(try await p.get(path, p.adminToken).status == .unauthorized, "\(path)")
                }
                #expect(try await p.call(.post, "/internal/v1/logs", token: p.adminToken, json: #"{"lines":[]}"#).status == .unauthorized)
                #expect(try await p.count("agents") == 0)
            }
        }
    }
}
