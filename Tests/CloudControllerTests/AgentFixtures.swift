import Foundation
import HTTPTypes
import NIOCore
import PlatformModels
import Testing

@testable import CloudController

/// Calls of the internal API as an execution agent makes them.
extension Platform {
    static let componentCredential = "test-internal-credential-0123456789"

    func component(_ method: HTTPRequest.Method, _ path: String, json: String? = nil) async throws -> Reply {
        try await call(method, path, token: nil, json: json, headers: [.authorization: "component \(Self.componentCredential)"])
    }

    func component(_ method: HTTPRequest.Method, _ path: String, body: some Encodable) async throws -> Reply {
        try await component(method, path, json: String(decoding: try JSONEncoder().encode(body), as: UTF8.self))
    }

    @discardableResult
    func registerAgent(_ id: String, memoryMB: Int = 4096, diskMB: Int = 65536, instances: Int = 100,
                       stacks: [String] = ["cflike-host"], host: String = "10.0.0.1") async throws -> AgentRegistered {
        let r = try await component(.put, "/internal/v1/agents/\(id)", body: AgentRegistration(
            hostAddress: host, capacity: AgentCapacity(memoryMB: memoryMB, diskMB: diskMB, instances: instances),
            stacks: stacks, version: "test"))
        guard r.status == .ok else { throw TestFailure("register \(id): \(r.status) \(r.body)") }
        return try JSONDecoder().decode(AgentRegistered.self, from: Data(r.body.utf8))
    }

    func heartbeat(_ id: String, _ reports: [InstanceReport], version: Int = 0) async throws -> Reply {
        try await component(.put, "/internal/v1/agents/\(id)/heartbeat", body: AgentHeartbeat(
            available: AgentCapacity(memoryMB: 1024, diskMB: 1024, instances: 10), instances: reports, assignmentsVersion: version))
    }

    func assignments(_ id: String, after: Int? = nil, wait: Int = 0) async throws -> AgentAssignments {
        let r = try await component(.get, "/internal/v1/agents/\(id)/assignments?wait=\(wait)" + (after.map { "&after=\($0)" } ?? ""))
        guard r.status == .ok else { throw TestFailure("assignments of \(id): \(r.status) \(r.body)") }
        return try JSONDecoder().decode(AgentAssignments.self, from: Data(r.body.utf8))
    }

    func routeTable(after: Int? = nil, wait: Int = 0) async throws -> RouteTable {
        let r = try await component(.get, "/internal/v1/routes?wait=\(wait)" + (after.map { "&after=\($0)" } ?? ""))
        guard r.status == .ok else { throw TestFailure("route table: \(r.status) \(r.body)") }
        return try JSONDecoder().decode(RouteTable.self, from: Data(r.body.utf8))
    }

    /// An app of the tenant with a staged current droplet, started; returns (app, web process).
    func startedApp(_ name: String, _ t: Tenant, instances: Int? = nil, memoryMB: Int? = nil) async throws -> (app: String, process: String) {
        let app = try await self.app(name, space: t.space, token: t.token)
        try await stagedDroplet(app: app, token: t.token)
        let process = try await get("/v3/apps/\(app)/processes/web", t.token).guid
        if instances != nil || memoryMB != nil {
            var fields: [String] = []
            if let instances { fields.append(#""instances":\#(instances)"#) }
            if let memoryMB { fields.append(#""memory_in_mb":\#(memoryMB)"#) }
            let r = try await post("/v3/processes/\(process)/actions/scale", t.token, "{\(fields.joined(separator: ","))}")
            guard r.status == .accepted else { throw TestFailure("scale: \(r.status) \(r.body)") }
        }
        let r = try await post("/v3/apps/\(app)/actions/start", t.token, "{}")
        guard r.status == .ok else { throw TestFailure("start: \(r.status) \(r.body)") }
        return (app, process)
    }

    func stats(_ process: String, _ token: String) async throws -> [[String: Any]] {
        let r = try await get("/v3/processes/\(process)/stats", token)
        guard r.status == .ok else { throw TestFailure("stats: \(r.status) \(r.body)") }
        return r.resources
    }

    /// A RUNNING report for an assignment.
    static func running(_ a: InstanceAssignment, port: Int, address: String = "10.255.0.2") -> InstanceReport {
        InstanceReport(instanceGUID: a.instanceGUID, processGUID: a.processGUID, appGUID: a.appGUID, index: a.index,
                       state: .running, hostPort: port, containerAddress: address, containerPort: 8080,
                       since: Date().timeIntervalSince1970, uptimeSeconds: 12, usage: InstanceUsage(cpu: 0.25, memoryBytes: 50 << 20, diskBytes: 10 << 20),
                       memoryQuotaBytes: Int64(a.memoryMB) << 20, diskQuotaBytes: Int64(a.diskMB) << 20)
    }

    /// Counts rows of a table (for "nothing changed" checks).
    func count(_ table: String) async throws -> Int {
        try await pool.query("SELECT count(*) AS n FROM \(table)").rows[0].decode("n", as: Int.self)
    }
}
