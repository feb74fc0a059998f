import Foundation
import PlatformClient
import PlatformModels
import Synchronization
import Testing

@testable import AppRouter

/// Every route-table poll names the router and says how fresh its table is: its id, platform
/// version and listen address, the table version it serves and the seconds since its table
/// last matched the controller's (0 while polls succeed, the outage's length after one).
@Suite(.timeLimit(.minutes(1))) struct RouterIdentityTests {
    static func parameters(_ uri: String) -> [String: String] {
        var result: [String: String] = [:]
        for item in URLComponents(string: uri)?.queryItems ?? [] { result[item.name] = item.value ?? "" }
        return result
    }

    @Test func theClientSendsTheRoutersIdVersionListenAndTableAge() async throws {
        let stub = try await StubController.start(RouteTable(version: 5, routes: []))
        let client = ComponentClient(api: stub.url, credential: StubController.credential, component: "router")
        try await withRouter(source: client, { $0.routerID = "router-test-1" }) { router in
            try await eventually("the second poll", within: .seconds(10)) { stub.uris.count >= 2 }
            let uris = stub.uris
            let first = Self.parameters(uris[0])
            #expect(first["router_id"] == "router-test-1")
            #expect(first["version"] == PlatformVersion.current)
            #expect(first["listen"] == "127.0.0.1:\(router.http)")
            #expect(first["table_version"] == nil && first["table_age_seconds"] == nil, "no table yet")
            #expect(first["after"] == nil)
            let second = Self.parameters(uris[1])
            #expect(second["router_id"] == "router-test-1")
            #expect(second["after"] == "5" && second["table_version"] == "5")
            #expect(second["table_age_seconds"] == "0", "the previous poll succeeded")
            #expect(uris[1].contains("listen=127.0.0.1%3A\(router.http)"), "values are percent-encoded")
        }
        await stub.stop()
        try await client.shutdown()
    }

    @Test func afterAnOutageTheAgeIsTheOutagesLength() async throws {
        let source = ScriptedRouteSource(RouteTable(version: 1, routes: []))
        try await withRouter(source: source, { $0.routerID = "router-outage" }) { _ in
            try await eventually("a poll with a table", within: .seconds(10)) { source.reports.contains { $0.tableVersion == 1 } }
            let before = source.reports.count
            source.fail(for: .milliseconds(2300))
            try await eventually("the poll after the outage", within: .seconds(10)) {
                source.reports.dropFirst(before).contains { ($0.tableAgeSeconds ?? 0) >= 2 }
            }
            try await eventually("a poll back in sync", within: .seconds(10)) {
                let after = source.reports.dropFirst(before)
                guard let stale = after.firstIndex(where: { ($0.tableAgeSeconds ?? 0) >= 2 }) else { return false }
                return after[stale...].dropFirst().contains { $0.tableAgeSeconds == 0 }
            }
            let reports = source.reports
            #expect(reports.allSatisfy { $0.routerID == "router-outage" && $0.version == PlatformVersion.current })
            #expect(reports.dropFirst(before).allSatisfy { $0.tableVersion == 1 }, "it kept serving its last table")
        }
    }

    @Test func theReportBeforeTheFirstTableCarriesNoVersionOrAge() {
        let none = RouteTableService.report(routerID: "r-1", listen: "127.0.0.1:8080", tableVersion: nil, lastSync: nil, now: 5_000_000_000)
        #expect(none.tableVersion == nil && none.tableAgeSeconds == nil)
        #expect(none.queryItems.map(\.name) == ["router_id", "version", "listen"])
        let synced = RouteTableService.report(routerID: "r-1", listen: "127.0.0.1:8080", tableVersion: 9, lastSync: 1_000_000_000,
                                              now: 4_900_000_000)
        #expect(synced.tableVersion == 9 && synced.tableAgeSeconds == 3)
        #expect(synced.queryItems.map(\.name) == ["router_id", "table_version", "table_age_seconds", "version", "listen"])
        #expect(ComponentClient.routeTablePath(after: 9, waitSeconds: 30, reporting: synced)
            == "/internal/v1/routes?wait=30&after=9&router_id=r-1&table_version=9&table_age_seconds=3&version=\(PlatformVersion.current)&listen=127.0.0.1%3A8080")
        #expect(ComponentClient.routeTablePath(after: nil, waitSeconds: 30, reporting: nil) == "/internal/v1/routes?wait=30")
    }

    @Test func theRouterIDIsConfigured() throws {
        let credential = FileManager.default.temporaryDirectory.appendingPathComponent("router-credential-\(UUID().uuidString)")
        try "test-credential".write(to: credential, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: credential) }
        func config(_ extra: [String: String]) throws -> RouterConfig {
            try RouterConfig(document: try ConfigDocument(path: nil, environment: extra.merging(
                ["CFLIKE_CONTROLLER_INTERNAL_CREDENTIAL_FILE": credential.path]) { a, _ in a }))
        }
        #expect(try config(["CFLIKE_ROUTER_ROUTER_ID": "edge-1"]).routerID == "edge-1")
        #expect(try config([:]).routerID.hasPrefix("router-"))
        #expect(throws: ConfigError.self) { try config(["CFLIKE_ROUTER_ROUTER_ID": "-bad_id"]) }
        #expect(RouterConfig(controllerURL: "http://cc", credential: "c").reportedListen(port: 81) == "127.0.0.1:81")
        var v6 = RouterConfig(controllerURL: "http://cc", credential: "c")
        v6.listenHost = "::"
        #expect(v6.reportedListen(port: 80) == "[::]:80")
    }
}

/// A route-table source that records every poll's report and can play an outage.
final class ScriptedRouteSource: RouteTableSource {
    private struct State {
        var table: RouteTable
        var reports: [RouterPollReport] = []
        var failUntil: ContinuousClock.Instant?
    }
    private let state: Mutex<State>

    init(_ table: RouteTable) { state = Mutex(State(table: table)) }

    var reports: [RouterPollReport] { state.withLock { $0.reports } }

    /// Every poll fails (the controller is unreachable) for `duration` from now.
    func fail(for duration: Duration) { state.withLock { $0.failUntil = ContinuousClock.now.advanced(by: duration) } }

    func routeTable(after version: Int?, waitSeconds: Int) async throws -> RouteTable {
        try await routeTable(after: version, waitSeconds: waitSeconds, reporting: nil)
    }

    func routeTable(after version: Int?, waitSeconds: Int, reporting report: RouterPollReport?) async throws -> RouteTable {
        let (table, failing) = state.withLock { s -> (RouteTable, Bool) in
            if let report { s.reports.append(report) }
            return (s.table, s.failUntil.map { ContinuousClock.now < $0 } ?? false)
        }
        if failing { throw ComponentClient.Failure.unreachable("connection refused (scripted outage)") }
        // Unchanged: a short long-poll.
        if version == table.version { try await Task.sleep(for: .milliseconds(50)) }
        return table
    }
}
