import Foundation
import PlatformModels
import Testing

@testable import CLIKit
@testable import PlatformClient

/// Routers in `cf-like-admin status`: one component row each, the table version they serve
/// against the controller's, and "none reporting" from controllers that do not list routers.
@Suite struct RouterStatusCLITests {
    static let page = """
        {"pagination":{"total_results":2,"total_pages":1,"first":{"href":"http://api/v3/admin/routers?page=1"},
                       "last":{"href":"http://api/v3/admin/routers?page=1"},"next":null,"previous":null},
         "resources":[
          {"id":"router-a","version":"0.1.0","listen_address":"10.0.0.5:8080","table_version":42,"table_age_seconds":0,
           "last_seen_at":"2026-03-01T12:00:00Z","current_table_version":42},
          {"id":"router-b","version":"0.1.0","listen_address":"[2001:db8::1]:8080","table_version":null,"table_age_seconds":null,
           "last_seen_at":"2026-03-01T11:59:00Z","current_table_version":42}]}
        """

    static func answer(_ status: Int, _ body: String) -> PlatformClient.Answer {
        PlatformClient.Answer(status: status, headers: [], body: Data(body.utf8))
    }

    static func router(_ id: String, table: Int?, current: Int = 42) -> RouterResource {
        RouterResource(id: id, version: "0.1.0", listenAddress: "10.0.0.5:8080", tableVersion: table, tableAgeSeconds: table == nil ? nil : 0,
                       lastSeenAt: "t1", currentTableVersion: current)
    }

    static func status(routers: [RouterResource]) -> PlatformStatus {
        PlatformStatus(controller: .init(address: "http://api", version: "1"), stagers: [], agents: [], routers: routers,
                       totals: PlatformStatus.totals(apps: 0, agents: [], instances: []))
    }

    @Test func routerRowsShowTheTableAgainstTheCurrentOne() {
        #expect(PlatformStatus.routerRows([Self.router("router-a", table: 42), Self.router("router-b", table: 40),
                                           Self.router("router-c", table: nil)]) == [
            ["router", "router-a", "10.0.0.5:8080", "0.1.0", "table 42 (current)", "t1"],
            ["router", "router-b", "10.0.0.5:8080", "0.1.0", "table 40 of 42", "t1"],
            ["router", "router-c", "10.0.0.5:8080", "0.1.0", "no table yet", "t1"],
        ])
    }

    @Test func theSummarySaysWhenNoRouterReports() {
        #expect(Self.status(routers: []).summaryRows().contains(["routers:", "none reporting"]))
        #expect(!Self.status(routers: [Self.router("router-a", table: 42)]).summaryRows().contains { $0[0] == "routers:" })
    }

    @Test func aControllerWithoutTheListCountsAsNoneReporting() throws {
        let missing = Self.answer(404, #"{"errors":[{"code":10000,"title":"CF-NotFound","detail":"Unknown request"}]}"#)
        #expect(try Session.pageIfListed(missing, as: RouterResource.self) == nil)
        let forbidden = Self.answer(403, #"{"errors":[{"code":10003,"title":"CF-NotAuthorized","detail":"You are not authorized to perform the requested action"}]}"#)
        #expect(throws: (any Error).self) { try Session.pageIfListed(forbidden, as: RouterResource.self) }

        let page = try #require(try Session.pageIfListed(Self.answer(200, Self.page), as: RouterResource.self))
        #expect(page.resources.map(\.id) == ["router-a", "router-b"])
        #expect(page.resources[1].tableVersion == nil && page.resources[1].listenAddress == "[2001:db8::1]:8080")
        #expect(PlatformStatus.routerRows(page.resources).map { $0[4] } == ["table 42 (current)", "no table yet"])
    }

    @Test func jsonIncludesTheRouters() throws {
        let empty = try Output.json(Self.status(routers: []))
        #expect(empty.contains("\"routers\" : ["))
        let json = try Output.json(Self.status(routers: [Self.router("router-a", table: 40), Self.router("router-b", table: nil)]))
        #expect(json.contains("\"id\" : \"router-a\"") && json.contains("\"current_table_version\" : 42"))
        #expect(json.contains("\"table_version\" : 40") && json.contains("\"table_version\" : null"))
        #expect(json.contains("\"listen_address\" : \"10.0.0.5:8080\""))
    }

    @Test func aStaleRouterAlertNamesTheRouter() throws {
        let alert = try JSONDecoder().decode(AlertResource.self, from: Data("""
            {"id":7,"name":"RouterTableStale","state":"active","severity":"warning","app_guid":null,
             "labels":{"alertname":"RouterTableStale","router_id":"router-a","severity":"warning"},
             "annotations":{"summary":"Router router-a stopped polling the route table","description":"..."},
             "starts_at":"2026-03-01T12:00:00Z","ends_at":null,"fingerprint":"f00d"}
            """.utf8))
        #expect(AlertRows.row(alert) == ["7", "RouterTableStale", "warning", "active", "router-a", "2026-03-01T12:00:00Z",
                                         "Router router-a stopped polling the route table"])
        #expect(AlertRows.details(alert).contains("router:        router-a\n"))
    }
}
