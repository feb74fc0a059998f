import ArgumentParser
import Foundation
import PlatformModels
import Testing

@testable import CLIKit
@testable import PlatformClient

@Suite struct AlertAndDrainCLITests {
    static let crashLoop = """
        {"id":12,"name":"InstanceCrashLoop","state":"active","severity":"critical","app_guid":"9f1c",
         "labels":{"alertname":"InstanceCrashLoop","app_guid":"9f1c","app_name":"hello","index":"0","severity":"critical"},
         "annotations":{"summary":"hello #0 crashed 4 times in 5 minutes","description":"The instance keeps crashing.",
                        "exit_description":"exited with status 1","last_log_lines":"Traceback (most recent call last):\\n  File \\"app.py\\"\\nKeyError: 'PORT'\\n"},
         "starts_at":"2026-03-01T12:01:02Z","ends_at":null,"fingerprint":"c0ffee"}
        """
    static let agentLost = """
        {"id":3,"name":"AgentLost","state":"resolved","severity":"warning",
         "labels":{"alertname":"AgentLost","agent_id":"dea-2","severity":"warning"},
         "annotations":{"summary":"dea-2 stopped heartbeating"},
         "starts_at":"2026-03-01T11:00:00Z","ends_at":"2026-03-01T11:05:00Z","fingerprint":"beef"}
        """

    static func decode<T: Decodable>(_ json: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    static func answer(_ status: Int, _ body: String) -> PlatformClient.Answer {
        PlatformClient.Answer(status: status, headers: [], body: Data(body.utf8))
    }

    static func agent(draining: Bool = false, placed: Int = 3) -> AgentResource {
        AgentResource(id: "dea-1", hostAddress: "10.0.0.1", state: "active", version: "1", stacks: ["cflinux"],
                      capacity: .init(memoryInMB: 4096, diskInMB: 8192, instances: 10),
                      available: .init(memoryInMB: 3072, diskInMB: 8000, instances: 7),
                      placedInstances: placed, runningInstances: placed, registeredAt: "t0", lastSeenAt: "t1", draining: draining)
    }

    @Test func argumentsAreParsed() throws {
        let alerts = try AlertsCommand.parse(["--all", "--app", "hello", "--json"])
        #expect(alerts.all && alerts.app == "hello" && alerts.output.json)
        let plain = try AlertsCommand.parse([])
        #expect(!plain.all && plain.app == nil && !plain.output.json)
        #expect(try AlertCommand.parse(["12", "--json"]).id == 12)
        #expect(throws: (any Error).self) { try AlertCommand.parse([]) }
        #expect(throws: (any Error).self) { try AlertCommand.parse(["twelve"]) }
        #expect(throws: (any Error).self) { try AlertCommand.parse(["0"]) }
        #expect(try DrainCommand.parse(["dea-1"]).id == "dea-1")
        #expect(try UndrainCommand.parse(["dea-1"]).id == "dea-1")
        #expect(throws: (any Error).self) { try DrainCommand.parse([]) }
        #expect(throws: (any Error).self) { try UndrainCommand.parse(["a", "b"]) }
    }

    @Test func alertQueries() {
        #expect(AlertQuery.path(all: false, appGuid: nil) == "/v3/admin/alerts?states=active&order_by=-id")
        #expect(AlertQuery.path(all: true, appGuid: "9f1c") == "/v3/admin/alerts?states=active,resolved&order_by=-id&app_guids=9f1c")
    }

    @Test func alertRows() throws {
        let crash = try Self.decode(Self.crashLoop, as: AlertResource.self)
        #expect(AlertRows.row(crash) == ["12", "InstanceCrashLoop", "critical", "active", "hello", "2026-03-01T12:01:02Z",
                                         "hello #0 crashed 4 times in 5 minutes"])
        let lost = try Self.decode(Self.agentLost, as: AlertResource.self)
        #expect(AlertRows.row(lost) == ["3", "AgentLost", "warning", "resolved", "dea-2", "2026-03-01T11:00:00Z", "dea-2 stopped heartbeating"])
        let table = Output.table(AlertRows.headers, [AlertRows.row(crash), AlertRows.row(lost)])
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("id   name"))
        let column = lines[1].range(of: "critical")!.lowerBound.utf16Offset(in: lines[1])
        #expect(lines[2].range(of: "warning")!.lowerBound.utf16Offset(in: lines[2]) == column)
    }

    @Test func alertDetailsShowEveryLabelAndAnnotation() throws {
        let crash = try Self.decode(Self.crashLoop, as: AlertResource.self)
        let text = AlertRows.details(crash)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "id:            12")
        #expect(lines.contains("app:           hello (9f1c)"))
        #expect(lines.contains("starts:        2026-03-01T12:01:02Z"))
        #expect(lines.contains("fingerprint:   c0ffee"))
        #expect(!text.contains("ends:"))
        for (key, value) in crash.labels { #expect(lines.contains { $0.hasPrefix("  \(key):") && $0.hasSuffix(" \(value)") }) }
        #expect(lines.contains("  summary:            hello #0 crashed 4 times in 5 minutes"))
        let block = try #require(lines.firstIndex(of: "  last_log_lines:"))
        #expect(Array(lines[(block + 1)...(block + 3)]) == ["      Traceback (most recent call last):", "        File \"app.py\"",
                                                           "      KeyError: 'PORT'"])
        #expect(text.hasSuffix("\n") && !text.hasSuffix("\n\n"))

        let lost = try Self.decode(Self.agentLost, as: AlertResource.self)
        let lostText = AlertRows.details(lost)
        #expect(lostText.contains("dea:           dea-2\n") && lostText.contains("ends:          2026-03-01T11:05:00Z\n"))
    }

    @Test func alertJSONKeepsTheAPINames() throws {
        let crash = try Self.decode(Self.crashLoop, as: AlertResource.self)
        let json = try Output.json([crash])
        #expect(json.contains("\"starts_at\" : \"2026-03-01T12:01:02Z\"") && json.contains("\"app_guid\" : \"9f1c\""))
        #expect(try Self.decode(json, as: [AlertResource].self) == [crash])
    }

    @Test func notFoundAnswersBecomeClearErrors() throws {
        let missing = Self.answer(404, #"{"errors":[{"code":10010,"title":"CF-ResourceNotFound","detail":"Alert not found"}]}"#)
        do {
            _ = try AlertCommand.alert(7, from: missing)
            Issue.record("expected an error")
        } catch let error as CLIError {
            #expect(error.exitCode == 2 && error.description == "Alert 7 not found; `cf-like-admin alerts --all` lists them")
        }
        // A controller without the endpoint: its own words, not "not found".
        let unknown = Self.answer(404, #"{"errors":[{"code":10000,"title":"CF-NotFound","detail":"Unknown request"}]}"#)
        #expect(throws: PlatformClient.Failure.self) { try AlertCommand.alert(7, from: unknown) }
        let denied = Self.answer(403, #"{"errors":[{"code":10003,"title":"CF-NotAuthorized","detail":"You are not authorized"}]}"#)
        #expect(throws: PlatformClient.Failure.self) {
            try decodeFound(denied, as: AgentResource.self, else: DrainMessages.notFound("dea-9"))
        }
        do {
            _ = try decodeFound(missing, as: AgentResource.self, else: DrainMessages.notFound("dea-9"))
            Issue.record("expected an error")
        } catch let error as CLIError {
            #expect(error.exitCode == 2 && error.description == "DEA 'dea-9' not found; `cf-like-admin deas` lists them")
        }
        let ok = Self.answer(200, try Output.json(Self.agent(draining: true)))
        #expect(try decodeFound(ok, as: AgentResource.self, else: DrainMessages.notFound("dea-1")).draining)
    }

    @Test func drainMessages() {
        #expect(DrainMessages.drained(Self.agent(placed: 4))
                == "Draining agent dea-1: its 4 instances move to other agents, replacements first.")
        #expect(DrainMessages.drained(Self.agent(placed: 1)) == "Draining agent dea-1: its 1 instance moves to another agent, replacement first.")
        #expect(DrainMessages.drained(Self.agent(placed: 0)) == "Draining agent dea-1: it has no instances; nothing new is placed there.")
        #expect(DrainMessages.undrained(Self.agent()) == "Agent dea-1 is no longer draining: new instances may be placed there again.")
    }

    @Test func agentsShowDraining() throws {
        #expect(AdminRows.agent(Self.agent(draining: true))[2] == "active, draining")
        #expect(AdminRows.agent(Self.agent())[2] == "active")
        // An older controller leaves `draining` out.
        var json = try Output.json(Self.agent(draining: true))
        json = json.replacingOccurrences(of: "\"draining\" : true,", with: "")
        #expect(!json.contains("draining"))
        #expect(try Self.decode(json, as: AgentResource.self).draining == false)
    }

    @Test func statusShowsHealthManagersAndAlerts() throws {
        let totals = PlatformStatus.totals(apps: 1, agents: [Self.agent()], instances: [])
        var status = PlatformStatus(controller: .init(address: "http://api", version: "1"), stagers: [], agents: [Self.agent()],
                                    totals: totals)
        #expect(status.summaryRows().contains(["health manager:", "none reporting"]))
        #expect(!status.summaryRows().contains { $0[0] == "alerts:" })
        let json = try Output.json(status)
        #expect(json.contains("\"health_managers\" : [") && !json.contains("active_alerts"))

        let managers = [HealthManagerResource(id: "hm-1", version: "0.1", active: true, lastSeenAt: "t1", leaseExpiresAt: "t2"),
                        HealthManagerResource(id: "hm-2", version: "0.1", active: false, lastSeenAt: "t3", leaseExpiresAt: nil)]
        status.healthManagers = managers
        status.activeAlerts = 2
        #expect(PlatformStatus.healthManagerRows(managers) == [["health manager", "hm-1", "", "0.1", "active", "t1"],
                                                               ["health manager", "hm-2", "", "0.1", "standby", "t3"]])
        let rows = status.summaryRows()
        #expect(rows.first == ["apps:", "1"] && rows.last == ["alerts:", "2 active"])
        #expect(!rows.contains { $0[0] == "health manager:" })
        status.healthManagers = [managers[1]]
        #expect(status.summaryRows().contains(["health manager:", "none active (1 standing by)"]))
        let full = try Output.json(status)
        #expect(full.contains("\"active_alerts\" : 2") && full.contains("\"last_seen_at\" : \"t3\""))
    }

    @Test func severalAppsOfOneNameNameTheirSpaces() throws {
        func app(_ guid: String, space: String) throws -> AppResource {
            try Self.decode("""
                {"guid":"\(guid)","created_at":"t","updated_at":"t","name":"hello","state":"STARTED",
                 "lifecycle":{"type":"buildpack","data":{"buildpacks":[],"stack":"cflinux"}},
                 "relationships":{"space":{"data":{"guid":"\(space)"}}},"metadata":{"labels":{},"annotations":{}},"links":{}}
                """, as: AppResource.self)
        }
        func space(_ guid: String, _ name: String, org: String) throws -> SpaceResource {
            try Self.decode("""
                {"guid":"\(guid)","created_at":"t","updated_at":"t","name":"\(name)",
                 "relationships":{"organization":{"data":{"guid":"\(org)"}}},"metadata":{"labels":{},"annotations":{}},"links":{}}
                """, as: SpaceResource.self)
        }
        let org = try Self.decode("""
            {"guid":"o1","created_at":"t","updated_at":"t","name":"acme","suspended":false,"relationships":{},
             "metadata":{"labels":{},"annotations":{}},"links":{}}
            """, as: OrganizationResource.self)
        let message = AppLookup.ambiguous("hello", apps: [try app("a1", space: "s2"), try app("a2", space: "s1")],
                                          spaces: [try space("s1", "dev", org: "o1"), try space("s2", "prod", org: "o1")], orgs: [org])
        #expect(message == "2 apps are named 'hello', in spaces acme/dev, acme/prod; target one with `cf-like target -o ORG -s SPACE`")
    }
}

@Suite struct CrashCountTests {
    static let stats = """
        {"resources":[
          {"type":"web","index":0,"state":"RUNNING","usage":{"time":"t","cpu":0.01,"mem":1048576,"disk":1048576},"host":"10.0.0.1",
           "uptime":60,"mem_quota":268435456,"disk_quota":1073741824,"details":null,"crash_count":4,"last_crash_at":"2027-01-15T07:40:10Z"},
          {"type":"web","index":1,"state":"RUNNING","usage":{"time":"t","cpu":0.01,"mem":1048576,"disk":1048576},"host":"10.0.0.1",
           "uptime":60,"mem_quota":268435456,"disk_quota":1073741824,"details":null,"crash_count":0,"last_crash_at":null},
          {"type":"web","index":2,"state":"CRASHED","usage":{"time":"t","cpu":0,"mem":0,"disk":0},"host":"",
           "uptime":0,"mem_quota":268435456,"disk_quota":1073741824,"details":"exited with 1","crash_count":1,
           "last_crash_at":"2027-01-14T23:59:59.250Z"}
        ]}
        """
    static let now = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z

    @Test func statsCarryCrashHistory() throws {
        let list = try JSONDecoder().decode(InstanceStatsList.self, from: Data(Self.stats.utf8))
        #expect(list.resources.map(\.crashes) == [CrashHistory(count: 4, lastAt: "2027-01-15T07:40:10Z"), CrashHistory(),
                                                  CrashHistory(count: 1, lastAt: "2027-01-14T23:59:59.250Z")])
        #expect(list.resources[2].stats.details == "exited with 1")
        // One object per instance in `app --json`, as the API has it.
        let json = try Output.json(list.resources[0])
        #expect(json.contains("\"crash_count\" : 4") && json.contains("\"mem_quota\" : 268435456") && json.contains("\"index\" : 0"))
        #expect(try JSONDecoder().decode(InstanceStats.self, from: Data(json.utf8)) == list.resources[0])
        #expect(try Output.json(list.resources[1]).contains("\"last_crash_at\" : null"))
        // An older controller: no crash fields.
        let old = try JSONDecoder().decode(InstanceStats.self, from: Data(try Output.json(list.resources[0].stats).utf8))
        #expect(old.crashes == CrashHistory())
    }

    @Test func crashesColumnOnlyWhenSomethingCrashed() throws {
        let list = try JSONDecoder().decode(InstanceStatsList.self, from: Data(Self.stats.utf8)).resources
        let crashes = Dictionary(uniqueKeysWithValues: list.map { ($0.stats.index, $0.crashes) })
        let rows = AppSummary.instanceRows(list.map(\.stats), crashes: crashes, now: Self.now)
        #expect(rows[0][6] == "4, last 07:40:10Z" && rows[1][6] == "" && rows[2][6] == "1, last 2027-01-14T23:59:59Z")
        #expect(rows[2].last == "exited with 1")

        let app = try JSONDecoder().decode(AppResource.self, from: Data("""
            {"guid":"g","created_at":"t","updated_at":"t","name":"hello","state":"STARTED",
             "lifecycle":{"type":"buildpack","data":{"buildpacks":[],"stack":"cflinux"}},
             "relationships":{},"metadata":{"labels":{},"annotations":{}},"links":{}}
            """.utf8))
        let text = AppSummary.render(app: app, process: nil, stats: list.map(\.stats), crashes: crashes, routes: [], droplet: nil, now: Self.now)
        let lines = text.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.contains("state") && $0.contains("since") })
        #expect(header.contains("crashes"))
        let row0 = try #require(lines.first { $0.hasPrefix("#0") })
        #expect(row0.range(of: "4, last")!.lowerBound.utf16Offset(in: row0) == header.range(of: "crashes")!.lowerBound.utf16Offset(in: header))

        let quiet = AppSummary.render(app: app, process: nil, stats: list.map(\.stats), crashes: [0: CrashHistory(), 1: CrashHistory()],
                                      routes: [], droplet: nil, now: Self.now)
        #expect(!quiet.contains("crashes") && AppSummary.instanceRows(list.map(\.stats), now: Self.now)[0].count == 7)
        #expect(AppSummary.crashed(CrashHistory(count: 2, lastAt: nil), now: Self.now) == "2")
        #expect(AppSummary.crashed(CrashHistory(count: 2, lastAt: "yesterday"), now: Self.now) == "2, last yesterday")
    }
}
