import Foundation
import HealthManager
import PlatformModels
import Testing

/// `RouterTableStale`: a recently seen router that reported a table older than the limit, or a
/// router seen within the hour that stopped polling for longer than the limit; each at its
/// boundary and not just before it.
struct RouterStaleAlertTests {
    let rules = AlertRules()
    let now = 1_000_000.0

    func snapshot(_ routers: [HealthRouter]) -> HealthSnapshot {
        HealthSnapshot(version: 1, asOf: now, processes: [], instances: [], agents: [], stagingFailures: [], routers: routers)
    }

    func router(_ id: String = "router-1", seenAgo: Double = 0, table: Int? = 7, age: Int? = 0) -> HealthRouter {
        HealthRouter(id: id, lastSeen: now - seenAgo, tableVersion: table, tableAgeSeconds: age)
    }

    func stale(_ routers: [HealthRouter], rules: AlertRules? = nil) -> [AlertDraft] {
        (rules ?? self.rules).evaluate(snapshot(routers), now: now).filter { $0.name == "RouterTableStale" }
    }

    @Test func aFreshRouterRaisesNothing() {
        #expect(stale([router(), router("router-2", seenAgo: 30, age: 2)]).isEmpty)
        #expect(stale([router(table: nil, age: nil)]).isEmpty, "no table yet is not a stale one")
    }

    @Test func aReportedAgeFiresAboveTheLimit() throws {
        #expect(stale([router(age: 60)]).isEmpty, "exactly the limit is not stale")
        let alert = try #require(stale([router(age: 61)]).first)
        #expect(alert.labels == ["alertname": "RouterTableStale", "severity": "warning", "router_id": "router-1"])
        #expect(alert.annotations["summary"] == "Router router-1 served a stale route table")
        #expect(alert.annotations["description"]?.contains("61 s") == true)
        #expect(alert.annotations["description"]?.contains("version 7") == true)
    }

    @Test func aReportedAgeCountsOnlyForRoutersSeenWithinFiveMinutes() {
        #expect(stale([router(seenAgo: 300, age: 5000)]).count == 1, "seen 5 minutes ago still counts")
        // Older reports are too old to matter, and silence that long is the other branch's.
        let rules = AlertRules(configuration: .init(routerStaleAfter: 600))
        #expect(stale([router(seenAgo: 300, age: 5000)], rules: rules).count == 1)
        #expect(stale([router(seenAgo: 300.5, age: 5000)], rules: rules).isEmpty)
    }

    @Test func silenceFiresAboveTheLimitWithinTheHour() throws {
        #expect(stale([router(seenAgo: 60)]).isEmpty, "exactly the limit is not stale")
        let alert = try #require(stale([router(seenAgo: 60.5)]).first)
        #expect(alert.labels == ["alertname": "RouterTableStale", "severity": "warning", "router_id": "router-1"])
        #expect(alert.annotations["summary"] == "Router router-1 stopped polling the route table")
        #expect(alert.annotations["description"]?.contains("has not polled the route table for 60 s") == true)
        #expect(stale([router(seenAgo: 3600)]).count == 1, "seen an hour ago still counts")
        #expect(stale([router(seenAgo: 3600.5)]).isEmpty, "a router gone for longer is out of service, not stale")
    }

    @Test func bothReasonsMakeOneAlertAndLabelsStayPut() {
        let silentAndOld = stale([router(seenAgo: 120, age: 500)])
        #expect(silentAndOld.count == 1)
        #expect(silentAndOld.first?.annotations["summary"] == "Router router-1 stopped polling the route table")
        // Only annotations move with time: the same alert continues.
        #expect(stale([router(seenAgo: 120)]).first?.labels == stale([router(seenAgo: 900)]).first?.labels)
    }

    @Test func theLimitIsConfigurable() {
        let rules = AlertRules(configuration: .init(routerStaleAfter: 10))
        #expect(stale([router(age: 11)], rules: rules).count == 1)
        #expect(stale([router(seenAgo: 10.5)], rules: rules).count == 1)
        #expect(stale([router(age: 10), router("router-2", seenAgo: 10)], rules: rules).isEmpty)
    }

    @Test func oneAlertPerRouterSorted() {
        let alerts = stale([router("router-b", age: 100), router("router-a", seenAgo: 200), router("router-c")])
        #expect(alerts.map { $0.labels["router_id"] } == ["router-a", "router-b"])
    }

    @Test func olderSnapshotsWithoutRoutersDecode() throws {
        let json = #"{"version":3,"as_of":1.5,"processes":[],"instances":[],"agents":[],"staging_failures":[]}"#
        let decoded = try JSONDecoder().decode(HealthSnapshot.self, from: Data(json.utf8))
        #expect(decoded.routers.isEmpty && decoded.version == 3)
        let withRouter = snapshot([router(table: nil, age: nil)])
        #expect(try JSONDecoder().decode(HealthSnapshot.self, from: JSONEncoder().encode(withRouter)) == withRouter)
    }

    @Test func theConfigKeyIsRead() throws {
        let credential = FileManager.default.temporaryDirectory.appendingPathComponent("hm-credential-\(UUID().uuidString)")
        try "test-credential".write(to: credential, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: credential) }
        func config(_ extra: [String: String]) throws -> HealthManagerConfig {
            try HealthManagerConfig(document: try ConfigDocument(path: nil, environment: extra.merging([
                "CFLIKE_HEALTH_MANAGER_ID": "hm-test", "CFLIKE_CONTROLLER_INTERNAL_CREDENTIAL_FILE": credential.path]) { a, _ in a }))
        }
        #expect(try config([:]).alertRules.routerStaleAfter == 60)
        #expect(try config(["CFLIKE_HEALTH_MANAGER_ROUTER_TABLE_STALE_SECONDS": "90"]).alertRules.routerStaleAfter == 90)
        #expect(throws: ConfigError.self) { try config(["CFLIKE_HEALTH_MANAGER_ROUTER_TABLE_STALE_SECONDS": "0"]) }
    }
}
