import Foundation
import HTTPTypes
import HealthManager
import PlatformModels
import Testing

@testable import CloudController

/// Calls of the internal health API as the health manager makes them.
extension Platform {
    @discardableResult
    func takeLease(_ holder: String, seconds: Double = 30) async throws -> Reply {
        try await component(.post, "/internal/v1/health/lease",
                            body: HealthLeaseRequest(holder: holder, durationSeconds: seconds, version: "test"))
    }

    func healthState(after: Int? = nil, wait: Int = 0) async throws -> HealthSnapshot {
        let r = try await component(.get, "/internal/v1/health/state?wait=\(wait)" + (after.map { "&after=\($0)" } ?? ""))
        guard r.status == .ok else { throw TestFailure("health state: \(r.status) \(r.body)") }
        return try JSONDecoder().decode(HealthSnapshot.self, from: Data(r.body.utf8))
    }

    /// One health manager pass, as the service runs it: decide on the snapshot, apply.
    @discardableResult
    func healthPass(_ holder: String, configuration: Decider.Configuration = .init()) async throws -> [HealthAction] {
        let lease = try await takeLease(holder)
        guard lease.status == .ok else { throw TestFailure("lease: \(lease.status) \(lease.body)") }
        let snapshot = try await healthState()
        let decider = Decider(configuration: configuration)
        let plan = decider.decide(desired: SnapshotAdapter.desired(snapshot), actual: SnapshotAdapter.actual(snapshot), now: snapshot.asOf)
        let actions = SnapshotAdapter.actions(plan, snapshot: snapshot, decider: decider, now: snapshot.asOf)
        guard !actions.isEmpty else { return [] }
        let r = try await component(.post, "/internal/v1/health/actions", body: HealthActions(holder: holder, actions: actions))
        guard r.status == .ok else { throw TestFailure("actions: \(r.status) \(r.body)") }
        return actions
    }

    func crashEvent(_ agent: String, _ a: InstanceAssignment, exitStatus: Int = 3) async throws -> Reply {
        try await component(.post, "/internal/v1/agents/\(agent)/events", body: InstanceEventBatch(events: [InstanceEvent(
            instanceGUID: a.instanceGUID, processGUID: a.processGUID, appGUID: a.appGUID, index: a.index, type: .crashed,
            exitStatus: exitStatus, reason: "APP/PROC/WEB: Exited with status \(exitStatus)", crashCount: 1,
            timestamp: Date().timeIntervalSince1970)]))
    }
}

extension ControllerIntegration {
    @Suite(.serialized, .timeLimit(.minutes(2))) struct HealthAPI {
        @Test func onlyTheLeaseHolderActsAndAReleaseHandsOver() async throws {
            try await Platform.run { p in
                #expect(try await p.takeLease("hm-1").status == .ok)
                let refused = try await p.takeLease("hm-2")
                #expect(refused.status == .conflict && refused.errorDetail.contains("hm-1"))
                let noop = HealthActions(holder: "hm-2", actions: [])
                #expect(try await p.component(.post, "/internal/v1/health/actions", body: noop).status == .conflict)
                #expect(try await p.component(.put, "/internal/v1/health/alerts", body: HealthAlertSet(holder: "hm-2", alerts: [])).status == .conflict)
                #expect(try await p.component(.delete, "/internal/v1/health/lease?holder=hm-1").status == .noContent)
                #expect(try await p.takeLease("hm-2").status == .ok)
                let managers = try await p.get("/v3/admin/health_managers", p.adminToken)
                let roles = Dictionary(uniqueKeysWithValues: managers.resources.map { ($0["id"] as? String ?? "", $0["active"] as? Bool) })
                #expect(roles == ["hm-1": false, "hm-2": true])
            }
        }

        @Test func badInputIsRefusedAndChangesNothing() async throws {
            try await Platform.run { p in
                #expect(try await p.component(.post, "/internal/v1/health/lease", body: HealthLeaseRequest(
                    holder: "HM 1", durationSeconds: 10, version: "")).status == .unprocessableContent)
                #expect(try await p.component(.post, "/internal/v1/health/lease", body: HealthLeaseRequest(
                    holder: "hm-1", durationSeconds: 0, version: "")).status == .unprocessableContent)
                #expect(try await p.count("component_leases") == 0)
                #expect(try await p.takeLease("hm-1").status == .ok)
                let bad = HealthActions(holder: "hm-1", actions: [HealthAction(kind: .stop, process: "not-a-guid", index: 0, instance: "x")])
                // An invalid action is refused alone, named, and applies nothing.
                let r = try await p.component(.post, "/internal/v1/health/actions", body: bad)
                let answer = try JSONDecoder().decode(HealthActionsAnswer.self, from: Data(r.body.utf8))
                #expect(r.status == .ok && answer.applied == 0 && answer.rejected?.first?.reason.contains("actions[0].process") == true)
                let noInstance = HealthActions(holder: "hm-1", actions: [HealthAction(kind: .restart, process: Rows.newGuid(), index: 0)])
                let refused = try await p.component(.post, "/internal/v1/health/actions", body: noInstance)
                #expect(try JSONDecoder().decode(HealthActionsAnswer.self, from: Data(refused.body.utf8)).rejected?.first?.reason
                        .contains("actions[0].instance is required") == true)
                #expect(try await p.component(.post, "/internal/v1/health/actions", json: #"{"holder":"hm-1","actions":7}"#).status
                        == .unprocessableContent, "the envelope itself is still refused")
                #expect(try await p.component(.get, "/internal/v1/health/state?wait=99").status == .badRequest)
                #expect(try await p.component(.get, "/internal/v1/health/state").status == .ok)
                // Without the component credential, nothing.
                #expect(try await p.call(.get, "/internal/v1/health/state", token: nil).status == .unauthorized)
                #expect(try await p.post("/v3/admin/agents/nope/actions/drain", p.adminToken, "{}").status == .notFound)
            }
        }

        @Test func aCrashCountsPerIndexAndTheRestartCarriesIt() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-a")
                let (app, process) = try await p.startedApp("web", t)
                let first = try #require(try await p.assignments("dea-a").instances.first)
                #expect(try await p.heartbeat("dea-a", [Platform.running(first, port: 61001)]).status == .ok)
                let before = try await p.healthState()
                #expect(try await p.crashEvent("dea-a", first).status == .ok)
                // The crash report moved the health version: a parked long-poll answers at once.
                let woken = try await p.healthState(after: before.version, wait: 5)
                #expect(woken.version > before.version)
                let crashed = try #require(woken.instances.first { $0.guid == first.instanceGUID })
                #expect(crashed.state == .crashed && crashed.crashCount == 1)
                #expect(crashed.exitDescription?.contains("exit status 3") == true)
                let stats = try await p.stats(process, t.token)
                #expect(stats.first?["crash_count"] as? Int == 1 && stats.first?["state"] as? String == "CRASHED")

                let actions = try await p.healthPass("hm-1")
                #expect(actions.map(\.kind) == [.restart])
                let second = try #require(try await p.assignments("dea-a").instances.first)
                #expect(second.instanceGUID != first.instanceGUID && second.index == 0)
                #expect(try await p.crashEvent("dea-a", second).status == .ok)
                let events = try await p.get("/v3/audit_events?types=audit.app.process.crash&target_guids=\(app)", t.token)
                let counts = events.resources.compactMap { ($0["data"] as? [String: Any])?["crash_count"] as? Int }.sorted()
                #expect(counts == [1, 2])
                let logs = try await p.get("/v3/apps/\(app)/logs?recent=true", t.token).body
                #expect(logs.contains("Restarting instance 0 after 1 crash"))
                // A decision made before the user scaled to zero is skipped, not applied.
                #expect(try await p.post("/v3/processes/\(process)/actions/scale", t.token, #"{"instances":0}"#).status == .accepted)
                let stale = HealthActions(holder: "hm-1", actions: [HealthAction(kind: .place, process: process, index: 0, agent: "dea-a")])
                let r = try await p.component(.post, "/internal/v1/health/actions", body: stale)
                let answer = try JSONDecoder().decode(HealthActionsAnswer.self, from: Data(r.body.utf8))
                #expect(answer.applied == 0 && answer.skipped.first?.contains("no longer desired") == true)
                #expect(try await p.assignments("dea-a").instances.isEmpty)
            }
        }

        @Test func drainingMovesInstancesReplacementsFirst() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-a")
                let (app, _) = try await p.startedApp("web", t)
                let old = try #require(try await p.assignments("dea-a").instances.first)
                #expect(try await p.heartbeat("dea-a", [Platform.running(old, port: 61001)]).status == .ok)
                try await p.registerAgent("dea-b")
                let drained = try await p.post("/v3/admin/agents/dea-a/actions/drain", p.adminToken, "{}")
                #expect(drained.status == .ok && drained.json["draining"] as? Bool == true)
                #expect(try await p.post("/v3/admin/agents/dea-a/actions/drain", t.token, "{}").status == .forbidden)

                // First pass: a replacement on dea-b; the old instance keeps serving.
                #expect(try await p.healthPass("hm-1").map(\.kind) == [.place])
                let replacement = try #require(try await p.assignments("dea-b").instances.first)
                #expect(try await p.assignments("dea-a").instances.map(\.instanceGUID) == [old.instanceGUID])
                #expect(try await p.healthPass("hm-1").isEmpty, "nothing stops before the replacement runs")
                // Once it runs, the old one stops.
                #expect(try await p.heartbeat("dea-b", [Platform.running(replacement, port: 61002)]).status == .ok)
                let last = try await p.healthPass("hm-1")
                #expect(last.map(\.kind) == [.stop] && last.first?.reason == "evacuated")
                #expect(try await p.assignments("dea-a").instances.isEmpty)
                let events = try await p.get("/v3/audit_events?types=audit.app.process.rescheduling&target_guids=\(app)", t.token)
                #expect(events.resources.count == 1)
                #expect(try await p.post("/v3/admin/agents/dea-a/actions/undrain", p.adminToken, "{}").json["draining"] as? Bool == false)
            }
        }

        @Test func withoutRoomTheIndexStaysUnplacedWithTheReason() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                try await p.registerAgent("dea-a", memoryMB: 1024)
                let (_, process) = try await p.startedApp("web", t, instances: 2, memoryMB: 768)
                #expect(try await p.assignments("dea-a").instances.count == 1)
                try await p.healthPass("hm-1")
                let stats = try await p.stats(process, t.token)
                #expect(stats.count == 2)
                #expect((stats.last?["details"] as? String)?.hasPrefix("insufficient resources") == true)
                // Once an agent with room registers, the index is placed there.
                try await p.registerAgent("dea-b", memoryMB: 1024)
                try await p.healthPass("hm-1")
                #expect(try await p.assignments("dea-b").instances.count == 1)
            }
        }

        @Test func alertsAreDeduplicatedStoredAndResolved() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let (app, _) = try await p.startedApp("web", t)
                #expect(try await p.takeLease("hm-1").status == .ok)
                let draft = AlertDraft(labels: ["alertname": "InstanceCrashLoop", "severity": "critical", "app_guid": app, "app_name": "web"],
                                       annotations: ["summary": "web keeps crashing", "crash_count": "3"])
                for count in 3...4 {  // the same labels twice: one alert, newest annotations
                    var next = draft
                    next.annotations["crash_count"] = String(count)
                    let r = try await p.component(.put, "/internal/v1/health/alerts", body: HealthAlertSet(holder: "hm-1", alerts: [next]))
                    #expect(r.status == .ok)
                }
                let listed = try await p.get("/v3/admin/alerts?states=active", p.adminToken)
                #expect(listed.resources.count == 1)
                let alert = try #require(listed.resources.first)
                #expect(alert["name"] as? String == "InstanceCrashLoop" && alert["app_guid"] as? String == app)
                #expect((alert["annotations"] as? [String: Any])?["crash_count"] as? String == "4")
                #expect(try await p.get("/v3/admin/alerts", t.token).status == .forbidden)
                let id = try #require(alert["id"] as? Int)

                let r = try await p.component(.put, "/internal/v1/health/alerts", body: HealthAlertSet(holder: "hm-1", alerts: []))
                let answer = try JSONDecoder().decode(HealthAlertsAnswer.self, from: Data(r.body.utf8))
                #expect(answer.active.isEmpty && answer.resolved.map(\.id) == [id])
                let shown = try await p.get("/v3/admin/alerts/\(id)", p.adminToken)
                #expect(shown.json["state"] as? String == "resolved" && shown.json["ends_at"] is String)
                #expect(try await p.get("/v3/admin/alerts?states=active", p.adminToken).resources.isEmpty)
                #expect(try await p.get("/v3/admin/alerts?states=bogus", p.adminToken).status == .badRequest)
                #expect(try await p.get("/v3/admin/alerts/999999", p.adminToken).status == .notFound)
            }
        }
    }
}
