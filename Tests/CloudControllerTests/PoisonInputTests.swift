import Foundation
import HTTPTypes
import NIOCore
import PlatformModels
import Testing

@testable import CloudController

/// App and buildpack text as it can reach the controller: colour codes, an OSC title, NUL, a raw
/// ESC byte (invalid JSON on its own), bytes that are not UTF-8, a lone surrogate escape, and
/// `bulk` bytes of filler. Bytes to put inside a JSON string.
func poison(bulk: Int = 0) -> [UInt8] {
    Array(#"\u001b[31mred\u001b[0m \u001b]0;title\u0007nul\u0000byte "#.utf8) + [0x1B] + Array("[1m".utf8)
        + [0xFF, 0xC3, 0x28] + Array(#" \ud800 lone "#.utf8) + Array(repeating: UInt8(ascii: "x"), count: bulk) + Array(" end".utf8)
}

/// What ``poison(bulk:)`` reads as once cleaned (before the filler).
let poisonCleaned = "red nulbyte \u{FFFD}\u{FFFD}( \u{FFFD} lone "

/// JSON text with every `"@POISON@"` / `"@BULK@"` string replaced by a poisoned one.
func poisoned(_ json: String, bulk: Int = 4 << 20) -> [UInt8] {
    var out: [UInt8] = []
    var rest = Substring(json)
    while let range = rest.range(of: #""@POISON@""#) ?? rest.range(of: #""@BULK@""#) {
        let big = rest[range] == #""@BULK@""#
        out += Array(rest[..<range.lowerBound].utf8) + [UInt8(ascii: "\"")] + poison(bulk: big ? bulk : 0) + [UInt8(ascii: "\"")]
        rest = rest[range.upperBound...]
    }
    return out + Array(rest.utf8)
}

/// No control character but where the field keeps line breaks.
func isClean(_ text: String, multiLine: Bool = false) -> Bool {
    !text.unicodeScalars.contains { s in
        (s.value < 0x20 && !(multiLine && s == "\n")) || (0x7F...0x9F).contains(s.value)
    }
}

extension Platform {
    /// Sends raw bytes as a component's JSON body (which may hold invalid UTF-8).
    func component(_ method: HTTPRequest.Method, _ path: String, bytes: [UInt8]) async throws -> Reply {
        let r = try await client.execute(
            uri: path, method: method,
            headers: [.authorization: "component \(Self.componentCredential)", .contentType: "application/json"],
            body: ByteBuffer(bytes: bytes))
        return Reply(status: r.status, headers: r.headers, body: String(buffer: r.body))
    }

    func activeAlerts() async throws -> [[String: Any]] {
        try await get("/v3/admin/alerts?states=active", adminToken).resources
    }
}

/// The pure parts: JSON text repair and splitting a batch.
@Suite struct BatchBodyTests {
    @Test func repairReplacesBrokenTextAndKeepsGoodJSON() throws {
        #expect(JSONBody.repairingText(Data(#"{"m":"ok \u00e9 \ud83d\ude00 \\ud800 \" \n"}"#.utf8)) == nil, "valid: nothing to repair")
        let broken = Data(#"{"m":"a"#.utf8 + [0xFF, 0x1B, 0x09] + #" \ud800 \udc00 z","n":[1, 2]}"#.utf8)
        let repaired = try #require(JSONBody.repairingText(broken))
        let value = try JSONDecoder().decode([String: JSONValue].self, from: repaired)
        #expect(value["m"] == .string("a\u{FFFD}\u{1B}\t \u{FFFD} \u{FFFD} z"))
        #expect(value["n"] == .array([.number(1), .number(2)]), "whitespace outside strings is left alone")
        #expect(JSONBody.repairingText(Data("{nope".utf8)) == nil, "not JSON for another reason")
    }

    @Test func itemsAreSortedOneByOne() throws {
        struct Body: Decodable { var items: [BatchItem<InstanceEvent.Kind>] }
        let body = try JSONDecoder().decode(Body.self, from: Data(#"{"items":["running",7,"evacuated","crashed"]}"#.utf8))
        var sorted = try BatchSort(body.items) { kind, i in
            if kind == .crashed { throw APIError.unprocessable("items[\(i)] crashed") }
            return kind
        }
        #expect(sorted.items == [.running])
        #expect(sorted.rejected.map(\.index) == [1, 2, 3])
        #expect(sorted.rejected[0].reason.contains("items[1]"))
        #expect(sorted.rejected[2].reason == "items[3] crashed")
        sorted.reject { _, _ in "no" }
        #expect(sorted.items.isEmpty && sorted.rejected.map(\.index) == [0, 1, 2, 3])
    }
}

extension ControllerIntegration {
    @Suite(.serialized, .timeLimit(.minutes(3))) struct PoisonInput {
        /// The incident: a buildpack's coloured failure output became alert 5's `error`, and every
        /// set after it was refused (`alerts[5].error must not contain control characters`), so no
        /// alert of any app was stored. Valid JSON, as the health manager sends it.
        @Test func aBuildpacksColouredFailureNoLongerBlocksEveryAlert() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                var apps: [String] = []
                for i in 0...5 { apps.append(try await p.app("app\(i)", space: t.space, token: t.token)) }
                #expect(try await p.takeLease("hm-1").status == .ok)
                var alerts = apps.prefix(5).map { app in
                    AlertDraft(labels: ["alertname": "AppDown", "severity": "critical", "app_guid": app], annotations: ["summary": "down"])
                }
                let output = "BuildpackCompileFailed - App staging failed in the buildpack compile phase: the buildpack failed\n"
                    + "\u{1B}[1;31m-----> ERROR\u{1B}[0m Could not install dependencies\n\u{1B}[33mnpm ERR!\u{1B}[39m code E404"
                alerts.append(AlertDraft(labels: ["alertname": "StagingFailed", "severity": "warning", "app_guid": apps[5]],
                                         annotations: ["summary": "Staging app5 failed", "error": output]))
                let r = try await p.component(.put, "/internal/v1/health/alerts", body: HealthAlertSet(holder: "hm-1", alerts: alerts))
                #expect(r.status == .ok, "\(r.body.prefix(300))")
                let answer = try JSONDecoder().decode(HealthAlertsAnswer.self, from: Data(r.body.utf8))
                #expect(answer.rejected == [])
                #expect(answer.active.count == 6)
                let staging = try #require(answer.active.first { $0.name == "StagingFailed" })
                #expect(staging.annotations["error"] == "BuildpackCompileFailed - App staging failed in the buildpack compile phase: "
                        + "the buildpack failed\n-----> ERROR Could not install dependencies\nnpm ERR! code E404", "lines kept, colours gone")
            }
        }

        @Test func aPoisonedAlertIsStoredCleanBesideOthersAndOnlyInvalidAlertsAreRefused() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let poisonedApp = try await p.app("web", space: t.space, token: t.token)
                let otherApp = try await p.app("shop", space: t.space, token: t.token)
                #expect(try await p.takeLease("hm-1").status == .ok)
                let tooMany = (0...20).map { #""k\#($0)":"v""# }.joined(separator: ",")
                let labels = #""alertname":"StagingFailed","severity":"warning","app_guid":"\#(poisonedApp)","app_name":"@POISON@""#
                let body = poisoned("""
                    {"holder":"hm-1","alerts":[
                     {"labels":{\(labels)},"annotations":{"summary":"@POISON@","error":"@BULK@"}},
                     {"labels":{"alertname":"AppDown","severity":"critical","app_guid":"\(otherApp)"},"annotations":{"summary":"shop is down"}},
                     {"labels":{"severity":"warning"},"annotations":{}},
                     {"labels":{"alertname":"AgentLost","agent_id":"dea-9"},"annotations":{\(tooMany)}},
                     {"labels":"not an object","annotations":{}}]}
                    """)
                let r = try await p.component(.put, "/internal/v1/health/alerts", bytes: body)
                #expect(r.status == .ok, "\(r.body.prefix(300))")
                let answer = try JSONDecoder().decode(HealthAlertsAnswer.self, from: Data(r.body.utf8))
                let rejected = try #require(answer.rejected)
                #expect(rejected.map(\.index) == [2, 3, 4])
                #expect(rejected.first?.reason.contains("alerts[2].labels.alertname") == true)
                #expect(rejected.dropFirst().first?.reason.contains("alerts[3]") == true)
                #expect(rejected.last?.reason.contains("alerts[4].labels") == true)
                #expect(answer.active.count == 2)

                let stored = try await p.activeAlerts()
                #expect(Set(stored.compactMap { $0["app_guid"] as? String }) == [poisonedApp, otherApp], "both apps' alerts stored")
                let clean = try #require(stored.first { $0["app_guid"] as? String == poisonedApp })
                let cleanLabels = try #require(clean["labels"] as? [String: String])
                let cleanAnnotations = try #require(clean["annotations"] as? [String: String])
                #expect(cleanLabels["app_name"] == poisonCleaned + " end")
                #expect(cleanAnnotations["summary"] == poisonCleaned + " end")
                let error = try #require(cleanAnnotations["error"])
                #expect(error.hasPrefix(poisonCleaned + "xxx") && error.utf8.count == UntrustedText.Field.alertAnnotation.maxBytes)
                #expect((Array(cleanLabels.values) + Array(cleanAnnotations.values)).allSatisfy { isClean($0, multiLine: true) })

                // An update refused later leaves the alert active as it was (a refusal never resolves it).
                let id = try #require(clean["id"] as? Int)
                let again = poisoned("""
                    {"holder":"hm-1","alerts":[{"labels":{\(labels)},"annotations":{\(tooMany)}},
                     {"labels":{"alertname":"AppDown","severity":"critical","app_guid":"\(otherApp)"},"annotations":{"summary":"still down"}}]}
                    """)
                let second = try JSONDecoder().decode(HealthAlertsAnswer.self, from: Data(
                    try await p.component(.put, "/internal/v1/health/alerts", bytes: again).body.utf8))
                #expect(second.rejected?.map(\.index) == [0])
                #expect(second.resolved.isEmpty)
                #expect(second.active.map(\.id).contains(id))
                #expect(second.active.first { $0.id == id }?.annotations["summary"] == poisonCleaned + " end")

                // Only envelope problems refuse the whole set.
                #expect(try await p.component(.put, "/internal/v1/health/alerts", json: #"{"holder":"hm-1","alerts":{}}"#).status
                        == .unprocessableContent)
                #expect(try await p.component(.put, "/internal/v1/health/alerts", json: "{nope").status == .badRequest)
                #expect(try await p.activeAlerts().count == 2)
            }
        }

        @Test func aPoisonedLogLineIsStoredCleanAndOnlyInvalidLinesAreRefused() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let other = try await p.app("shop", space: t.space, token: t.token)
                func line(_ app: String, _ message: String, type: String = "OUT") -> String {
                    #"{"app_guid":"\#(app)","timestamp":1,"source_type":"APP/PROC/WEB","source_instance":"0","message_type":"\#(type)","message":"\#(message)"}"#
                }
                let body = poisoned(#"{"lines":[\#([line(app, "@BULK@"), line(other, "from shop"), line("not-a-guid", "x"), line(app, "x", type: "LOUD"), line(app, "é 日本 👍")].joined(separator: ","))]}"#)
                let r = try await p.component(.post, "/internal/v1/logs", bytes: body)
                #expect(r.status == .ok, "\(r.body.prefix(300))")
                let answer = try JSONDecoder().decode(BatchAnswer.self, from: Data(r.body.utf8))
                #expect(answer.accepted == 3)
                #expect(answer.rejected.map(\.index) == [2, 3])
                #expect(answer.rejected.first?.reason.contains("lines[2].app_guid") == true)
                #expect(answer.rejected.last?.reason.contains("lines[3].message_type") == true)

                let lines = try await p.recentLogs(app, t.token).lines.map(\.message)
                #expect(lines.count == 2)
                #expect(lines.first.map { $0.hasPrefix(poisonCleaned + "xxx") && $0.utf8.count == AppLogStore.maxMessageBytes } == true)
                #expect(lines.allSatisfy { isClean($0) })
                #expect(lines.last == "é 日本 👍")
                #expect(try await p.recentLogs(other, t.token).lines.map(\.message) == ["from shop"])
            }
        }

        @Test func aPoisonedCrashIsRecordedCleanAndOnlyInvalidEventsAreRefused() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-1")
                let (app, process) = try await p.startedApp("web", t, instances: 2)
                let placed = try await p.assignments("dea-1").instances.sorted { $0.index < $1.index }
                try #require(placed.count == 2)
                func event(_ a: InstanceAssignment, type: String, index: Int? = nil, reason: String) -> String {
                    #"{"instance_guid":"\#(a.instanceGUID)","process_guid":"\#(process)","app_guid":"\#(app)","index":\#(index ?? a.index),"type":"\#(type)","exit_status":3,"reason":"\#(reason)","crash_count":1,"timestamp":\#(Date().timeIntervalSince1970)}"#
                }
                let events = [event(placed[0], type: "crashed", reason: "@BULK@"), event(placed[1], type: "running", reason: "healthy"),
                              event(placed[1], type: "crashed", index: -1, reason: "x"), event(placed[1], type: "evacuated", reason: "x")]
                let r = try await p.component(.post, "/internal/v1/agents/dea-1/events",
                                              bytes: poisoned(#"{"events":[\#(events.joined(separator: ","))]}"#))
                #expect(r.status == .ok, "\(r.body.prefix(300))")
                let answer = try JSONDecoder().decode(BatchAnswer.self, from: Data(r.body.utf8))
                #expect(answer.accepted == 2 && answer.rejected.map(\.index) == [2, 3])
                #expect(answer.rejected.first?.reason.contains("events[2].index") == true)
                #expect(answer.rejected.last?.reason.contains("events[3].type") == true)

                let stats = try await p.stats(process, t.token).sorted { ($0["index"] as? Int ?? 0) < ($1["index"] as? Int ?? 0) }
                #expect(stats.map { $0["state"] as? String } == ["CRASHED", "RUNNING"])
                let details = try #require(stats.first?["details"] as? String)
                #expect(details.hasPrefix(poisonCleaned + "xxx") && details.utf8.count <= UntrustedText.Field.reason.maxBytes && isClean(details))
                let crash = try #require(try await p.get("/v3/audit_events?types=audit.app.process.crash", t.token).resources.first)
                let reason = try #require((crash["data"] as? [String: Any])?["reason"] as? String)
                #expect(reason == details)
                let exit = try await p.pool.query("SELECT exit_description FROM instances WHERE guid = $1", [placed[0].instanceGUID])
                #expect(exit.rows.first?["exit_description"].map { $0.hasPrefix(poisonCleaned) && isClean($0) } == true)
                let cell = try #require(try await p.recentLogs(app, t.token).lines.last { $0.sourceType == "CELL" && $0.messageType == .err })
                #expect(cell.message.contains(poisonCleaned) && isClean(cell.message))
            }
        }

        @Test func aPoisonedInstanceReportIsStoredCleanAndOnlyInvalidReportsAreRefused() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-1")
                let (_, process) = try await p.startedApp("web", t, instances: 4)
                let placed = try await p.assignments("dea-1").instances.sorted { $0.index < $1.index }
                try #require(placed.count == 4)
                let first = placed.enumerated().map { Platform.running($0.element, port: 61000 + $0.offset) }
                #expect(try await p.heartbeat("dea-1", first).status == .ok)
                let before = try await p.routeTable()

                func report(_ r: InstanceReport) throws -> String { String(decoding: try JSONEncoder().encode(r), as: UTF8.self) }
                var poisonedReport = first[0]
                poisonedReport.details = "@BULK@"
                var badPort = first[1]
                badPort.hostPort = 70000
                badPort.state = .crashed
                let unknownState = try report(first[3]).replacingOccurrences(of: #""state":"RUNNING""#, with: #""state":"HIBERNATING""#)
                let reports = [try report(poisonedReport), try report(badPort), try report(first[2]), try report(first[2]), unknownState]
                let body = poisoned(#"{"available":{"memory_mb":1024,"disk_mb":1024,"instances":10},"assignments_version":0,"instances":[\#(reports.joined(separator: ","))]}"#)
                let r = try await p.component(.put, "/internal/v1/agents/dea-1/heartbeat", bytes: body)
                #expect(r.status == .ok, "\(r.body.prefix(300))")
                let ack = try JSONDecoder().decode(HeartbeatAck.self, from: Data(r.body.utf8))
                #expect(ack.rejected?.map(\.index) == [1, 3, 4])
                #expect(ack.rejected?.first?.reason.contains("instances[1].host_port") == true)
                #expect(ack.rejected?.dropFirst().first?.reason.contains("again") == true)
                #expect(ack.rejected?.last?.reason.contains("instances[4].state") == true)

                let stats = try await p.stats(process, t.token).sorted { ($0["index"] as? Int ?? 0) < ($1["index"] as? Int ?? 0) }
                #expect(stats.map { $0["state"] as? String } == ["RUNNING", "RUNNING", "RUNNING", "RUNNING"],
                        "the refused reports left indexes 1 and 3 as they were")
                let details = try #require(stats.first?["details"] as? String)
                #expect(details.hasPrefix(poisonCleaned + "xxx") && details.utf8.count <= UntrustedText.Field.reason.maxBytes && isClean(details))
                let after = try await p.routeTable()
                #expect(after.version == before.version, "no backend came or went")
            }
        }

        @Test func anInvalidHealthActionIsRefusedAloneAndTheRestApplied() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-1")
                let (_, process) = try await p.startedApp("web", t, instances: 2)
                let placed = try await p.assignments("dea-1").instances.sorted { $0.index < $1.index }
                try #require(placed.count == 2)
                #expect(try await p.takeLease("hm-1").status == .ok)
                let actions = HealthActions(holder: "hm-1", actions: [
                    HealthAction(kind: .stop, process: "not-a-guid", index: 0, instance: placed[0].instanceGUID, reason: "x"),
                    HealthAction(kind: .stop, process: process, index: 1, instance: placed[1].instanceGUID,
                                 reason: "\u{1B}[31mscaled down\u{1B}[0m\0"),
                ])
                let r = try await p.component(.post, "/internal/v1/health/actions", body: actions)
                #expect(r.status == .ok, "\(r.body.prefix(300))")
                let answer = try JSONDecoder().decode(HealthActionsAnswer.self, from: Data(r.body.utf8))
                #expect(answer.rejected?.map(\.index) == [0])
                #expect(answer.rejected?.first?.reason.contains("actions[0].process") == true)
                #expect(answer.applied + answer.skipped.count == 1)
                #expect(try await p.assignments("dea-1").instances.map(\.index) == [0], "index 1 stopped, index 0 untouched")
            }
        }
    }
}
