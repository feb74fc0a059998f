import Foundation
import PlatformModels
import Testing

@testable import CloudController

/// SHA-256 in hex, through the blobstore's own hashing writer (in a scratch directory).
func sha256(_ data: Data) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let writer = try BlobWriter(directory: dir.path, limit: Int.max)
    defer { writer.discard() }
    try writer.write([UInt8](data))
    return try writer.finish().sha256
}

extension Platform {
    func ship(_ lines: [LogLine]) async throws -> Reply {
        try await component(.post, "/internal/v1/logs", body: LogBatch(lines: lines))
    }

    func recentLogs(_ app: String, _ token: String, query: String = "") async throws -> AppLogPage {
        let r = try await get("/v3/apps/\(app)/logs?recent" + query, token)
        guard r.status == .ok else { throw TestFailure("recent logs: \(r.status) \(r.body)") }
        return try JSONDecoder().decode(AppLogPage.self, from: Data(r.body.utf8))
    }

    static func line(_ app: String, _ message: String, at timestamp: Int64 = 1_700_000_000_000_000_000) -> LogLine {
        LogLine(appGUID: app, timestamp: timestamp, sourceType: "APP/PROC/WEB", sourceInstance: "0", messageType: .out, message: message)
    }
}

extension ControllerIntegration {
    @Suite(.serialized) struct Logs {
        @Test func recentLinesOldestFirstBoundedPerAppAndPrivate() async throws {
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_APP_LOG_LINES": "5"]) { p in
                let alice = try await p.tenant("alice")
                let bob = try await p.tenant("bob")
                let app = try await p.app("web", space: alice.space, token: alice.token)
                let other = try await p.app("other", space: alice.space, token: alice.token)
                #expect(try await p.recentLogs(app, alice.token).lines.isEmpty)

                let first = (1...4).map { Platform.line(app, "line \($0)") }
                #expect(try await p.ship(first + [Platform.line(other, "elsewhere")]).status == .ok)
                #expect(try await p.ship((5...7).map { Platform.line(app, "line \($0)") }).status == .ok)
                let page = try await p.recentLogs(app, alice.token)
                #expect(page.lines.map(\.message) == ["line 3", "line 4", "line 5", "line 6", "line 7"], "the newest 5, oldest first")
                #expect(page.lines.allSatisfy { $0.appGUID == app && $0.sourceType == "APP/PROC/WEB" })
                #expect(try await p.recentLogs(other, alice.token).lines.map(\.message) == ["elsewhere"])
                #expect(try await p.recentLogs(app, alice.token, query: "&lines=2").lines.map(\.message) == ["line 6", "line 7"])

                // The cursor gives only newer lines.
                #expect(try await p.recentLogs(app, alice.token, query: "&after=\(page.nextCursor)").lines.isEmpty)
                #expect(try await p.ship([Platform.line(app, "line 8")]).status == .ok)
                let newer = try await p.recentLogs(app, alice.token, query: "&after=\(page.nextCursor)")
                #expect(newer.lines.map(\.message) == ["line 8"])
                #expect(newer.nextCursor > page.nextCursor)

                // Other tenants cannot tell the app exists; an org auditor sees the app but not its logs.
                #expect(try await p.get("/v3/apps/\(app)/logs?recent", bob.token).status == .notFound)
                #expect(try await p.get("/v3/apps/\(app)/logs?follow=true", bob.token).status == .notFound)
                let (auditor, auditorToken) = try await p.user("olga")
                try await p.role("organization_auditor", user: auditor, org: alice.org)
                #expect(try await p.get("/v3/apps/\(app)", auditorToken).status == .ok)
                #expect(try await p.get("/v3/apps/\(app)/logs?recent", auditorToken).status == .forbidden)
                let (spaceAuditor, spaceAuditorToken) = try await p.user("sam")
                try await p.role("organization_user", user: spaceAuditor, org: alice.org)
                try await p.role("space_auditor", user: spaceAuditor, space: alice.space)
                #expect(try await p.recentLogs(app, spaceAuditorToken).lines.count == 5)

                // Strict queries.
                for query in ["", "?recent&follow=true", "?recent=yes", "?recent&lines=0", "?recent&lines=1001", "?follow=true&lines=3",
                              "?recent&after=-1", "?recent&tail=1"] {
                    #expect(try await p.get("/v3/apps/\(app)/logs\(query)", alice.token).status == .badRequest, "\(query)")
                }

                // Kept across restarts (they live in the database) and gone with the app.
                #expect(try await p.delete("/v3/apps/\(app)", alice.token).status == .accepted)
                #expect(try await p.pool.query("SELECT count(*) AS n FROM app_log_lines WHERE app_guid = $1", [app]).rows[0]["n"] == "0")
            }
        }

        @Test func batchesAreValidatedTruncatedAndUnknownAppsDropped() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let tooMany = try await p.ship((0...1000).map { Platform.line(app, "n\($0)") })
                #expect(tooMany.status == .contentTooLarge)
                #expect(tooMany.errorDetail.contains("1000"))
                #expect(try await p.count("app_log_lines") == 0, "nothing of a refused batch is kept")
                // A bad line is refused alone and named; the others are stored.
                let badGuid = try await p.ship([Platform.line(app, "ok"), Platform.line("not-a-guid", "x")])
                let answer = try JSONDecoder().decode(BatchAnswer.self, from: Data(badGuid.body.utf8))
                #expect(badGuid.status == .ok && answer.accepted == 1 && answer.rejected.map(\.index) == [1])
                #expect(answer.rejected.first?.reason.contains("lines[1].app_guid") == true)
                let badType = try await p.component(.post, "/internal/v1/logs", json: #"""
                    {"lines":[{"app_guid":"\#(app)","timestamp":1,"source_type":"APP","source_instance":"0","message_type":"LOUD","message":"x"}]}
                    """#)
                let typeAnswer = try JSONDecoder().decode(BatchAnswer.self, from: Data(badType.body.utf8))
                #expect(badType.status == .ok && typeAnswer.accepted == 0)
                #expect(typeAnswer.rejected.first?.reason.contains("lines[0].message_type") == true)
                #expect(try await p.component(.post, "/internal/v1/logs", json: "{nope").status == .badRequest)
                #expect(try await p.recentLogs(app, t.token).lines.map(\.message) == ["ok"])
                _ = try await p.pool.query("DELETE FROM app_log_lines")

                let unknown = UUID().uuidString.lowercased()
                let huge = String(repeating: "é", count: 40_000)  // 80,000 bytes
                let r = try await p.ship([Platform.line(unknown, "lost"), Platform.line(app, huge), Platform.line(app, "nul\0byte")])
                #expect(r.status == .ok)
                let lines = try await p.recentLogs(app, t.token).lines
                #expect(lines.count == 2)
                #expect(lines.first.map { $0.message.utf8.count <= 65536 && $0.message.utf8.count > 65000 } == true)
                #expect(lines.first?.message.allSatisfy { $0 == "é" } == true, "cut between characters")
                #expect(lines.last?.message == "nulbyte", "NUL removed")
                #expect(try await p.count("app_log_lines") == 2)
            }
        }

        @Test func aCrashIsAuditedAndLoggedFromTheCell() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-1")
                let (app, process) = try await p.startedApp("web", t)
                let a = try #require(try await p.assignments("dea-1").instances.first)
                let crash = InstanceEvent(instanceGUID: a.instanceGUID, processGUID: process, appGUID: app, index: 0, type: .crashed,
                                          exitStatus: 3, reason: "exited with status 3", crashCount: 2,
                                          timestamp: Date().timeIntervalSince1970)
                #expect(try await p.component(.post, "/internal/v1/agents/dea-1/events", body: InstanceEventBatch(events: [crash])).status == .ok)

                let events = try await p.get("/v3/audit_events?types=audit.app.process.crash", t.token)
                let event = try #require(events.resources.first)
                #expect(events.resources.count == 1)
                #expect((event["target"] as? [String: Any])?["guid"] as? String == app)
                #expect((event["actor"] as? [String: Any])?["type"] as? String == "process")
                let data = try #require(event["data"] as? [String: Any])
                #expect(data["index"] as? Int == 0)
                #expect(data["exit_status"] as? Int == 3)
                #expect(data["reason"] as? String == "exited with status 3")
                #expect(data["instance"] as? String == a.instanceGUID)
                // The index's count, kept by the controller across restarts, not the agent's count for one instance.
                #expect(data["crash_count"] as? Int == 1)

                let cell = try #require(try await p.recentLogs(app, t.token).lines.last)
                #expect(cell.sourceType == "CELL")
                #expect(cell.sourceInstance == "0")
                #expect(cell.messageType == .err)
                #expect(cell.message.contains("exited") && cell.message.contains("exited with status 3") && cell.message.contains("exit status 3"))
                #expect(try await p.stats(process, t.token).first?["state"] as? String == "CRASHED")

                // A bad event is refused alone, named, and changes nothing.
                let bad = try await p.component(.post, "/internal/v1/agents/dea-1/events", json: #"""
                    {"events":[{"instance_guid":"\#(a.instanceGUID)","process_guid":"\#(process)","app_guid":"\#(app)","index":-1,"type":"crashed","reason":"x","crash_count":1,"timestamp":1}]}
                    """#)
                let refused = try JSONDecoder().decode(BatchAnswer.self, from: Data(bad.body.utf8))
                #expect(bad.status == .ok && refused.accepted == 0)
                #expect(refused.rejected.first?.reason.contains("events[0].index") == true)
                #expect(try await p.get("/v3/audit_events?types=audit.app.process.crash", t.token).resources.count == 1)
            }
        }

        @Test func dropletDownloadStreamsTheBlobWithItsDigest() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let bits = try makeDroplet(files: [("app/big", String(repeating: "0123456789abcdef", count: 40_000)),
                                                   ("staging_info.yml", "start_command: ./big\n")])
                let droplet = try await p.stagedDroplet(app: app, token: t.token, bits: bits)
                let r = try await p.client.execute(
                    uri: "/internal/v1/droplets/\(droplet)/download", method: .get,
                    headers: [.authorization: "component \(Platform.componentCredential)"], body: nil)
                #expect(r.status == .ok)
                let digest = try sha256(bits)
                #expect(r.headers[.init(AgentProtocol.sha256Header)!] == digest)
                #expect(Data(r.body.readableBytesView) == bits)

                #expect(try await p.component(.get, "/internal/v1/droplets/\(UUID().uuidString)/download").status == .notFound)
                #expect(try await p.component(.get, "/internal/v1/droplets/not-a-guid/download").status == .notFound)
                let pending = try await p.post("/v3/droplets", t.token, #"{"relationships":{"app":{"data":{"guid":"\#(app)"}}}}"#)
                #expect(try await p.component(.get, "/internal/v1/droplets/\(pending.guid)/download").status == .notFound,
                        "not STAGED")
            }
        }
    }
}
