import ArgumentParser
import Foundation
import PlatformModels
import Testing

@testable import CLIKit

@Suite struct RouteAndAdminCLITests {
    @Test func routeArgumentsAreValidated() throws {
        _ = try MapRouteCommand.parse(["hello", "apps.localhost", "--hostname", "hi", "--path", "/api"])
        _ = try UnmapRouteCommand.parse(["hello", "apps.localhost", "-n", "hi"])
        #expect(throws: (any Error).self) { try MapRouteCommand.parse(["hello", "apps.localhost", "--hostname", "two.labels"]) }
        #expect(throws: (any Error).self) { try MapRouteCommand.parse(["hello", "apps.localhost", "--hostname", "-dash"]) }
        #expect(throws: (any Error).self) { try MapRouteCommand.parse(["hello", "apps.localhost", "--path", "/"]) }
        #expect(throws: (any Error).self) { try UnmapRouteCommand.parse(["hello", "apps.localhost", "--path", "/a/../b"]) }
        #expect(throws: (any Error).self) { try MapRouteCommand.parse(["hello"]) }
    }

    @Test func routeSpecNormalises() throws {
        let spec = try RouteSpec(hostname: "Hi", path: "api")
        #expect(spec.hostname == "hi" && spec.path == "/api")
        #expect(spec.url(domain: "apps.localhost") == "hi.apps.localhost/api")
        #expect(try RouteSpec(hostname: nil, path: nil).url(domain: "example.com") == "example.com")
    }

    @Test func instanceAndEventArgumentsAreValidated() throws {
        _ = try RestartAppInstanceCommand.parse(["hello", "0"])
        #expect(throws: (any Error).self) { try RestartAppInstanceCommand.parse(["hello", "-1"]) }
        #expect(throws: (any Error).self) { try RestartAppInstanceCommand.parse(["hello", "one"]) }
        _ = try PlatformEventsCommand.parse(["--type", "audit.app.create", "--json"])
        #expect(throws: (any Error).self) { try PlatformEventsCommand.parse(["--limit", "0"]) }
        #expect(throws: (any Error).self) { try DEACommand.parse([]) }
    }

    @Test func statusTotalsCountActiveAgentsOnly() {
        func agent(_ id: String, state: String, memory: Int, free: Int) -> AgentResource {
            AgentResource(id: id, hostAddress: "10.0.0.1", state: state, version: "1", stacks: [],
                          capacity: .init(memoryInMB: memory, diskInMB: 100, instances: 10),
                          available: .init(memoryInMB: free, diskInMB: 100, instances: 8),
                          placedInstances: 2, runningInstances: 2, registeredAt: "", lastSeenAt: "")
        }
        func instance(_ state: String) -> InstanceResource {
            InstanceResource(guid: UUID().uuidString, appGuid: "a", appName: "a", spaceGuid: nil, processGuid: "p", processType: "web",
                             index: 0, state: state, agentId: "a", hostAddress: "", hostPort: nil, since: 0, uptime: 0, details: nil)
        }
        let t = PlatformStatus.totals(apps: 3, agents: [agent("a", state: "active", memory: 4096, free: 3072),
                                                         agent("b", state: "lost", memory: 4096, free: 0)],
                                      instances: [instance("RUNNING"), instance("RUNNING"), instance("CRASHED"), instance("STARTING")])
        #expect(t.apps == 3 && t.instancesRunning == 2 && t.instancesCrashed == 1)
        #expect(t.memoryUsedMB == 1024 && t.memoryFreeMB == 3072)
        #expect(t.instanceSlotsUsed == 2 && t.instanceSlotsFree == 8)
    }

    @Test func instanceRowsShowAddressAndState() {
        let i = InstanceResource(guid: "g", appGuid: "a", appName: "hello", spaceGuid: nil, processGuid: "p", processType: "web",
                                 index: 1, state: "RUNNING", agentId: "dea-1", hostAddress: "10.0.0.1", hostPort: 61001,
                                 since: 0, uptime: 5, details: nil)
        #expect(AdminRows.instance(i) == ["hello", "web", "#1", "running", "dea-1", "10.0.0.1:61001", "1970-01-01T00:00:00Z", ""])
    }
}
