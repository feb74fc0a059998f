import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `/internal/v1/agents/...`: execution agents register, heartbeat their actual state,
/// long-poll their assignments and report instance events (AgentProtocol.swift is the contract).
///
/// A heartbeat from an agent the controller does not know, or has marked lost, is 404 so the
/// agent registers again (which places instances on it again).
struct AgentsController {
    let services: Services
    /// Internal bodies (heartbeats, log batches) may be larger than public ones.
    var body: JSONBody { JSONBody(maxBytes: services.config.maxInternalBodyBytes) }

    static let maxWaitSeconds = 60
    static let maxReports = 10_000
    static let maxEvents = 1000

    func register(_ group: RouterGroup<ControllerContext>) {
        group.put("v1/agents/:agent_id", use: registerAgent)
        group.put("v1/agents/:agent_id/heartbeat", use: heartbeat)
        group.get("v1/agents/:agent_id/assignments", use: assignments)
        group.post("v1/agents/:agent_id/events", use: events)
    }

    // MARK: Validation

    /// `^[a-z0-9][a-z0-9.-]{0,62}$`, checked before anything touches the database.
    static func isAgentID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard let first = bytes.first, bytes.count <= 63 else { return false }
        func alnum(_ b: UInt8) -> Bool { (0x61...0x7a).contains(b) || (0x30...0x39).contains(b) }
        return alnum(first) && bytes.dropFirst().allSatisfy { alnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    static func agentID(_ context: ControllerContext) throws -> String {
        let id = context.parameters.get("agent_id") ?? ""
        guard isAgentID(id) else {
            throw APIError.unprocessable(
                "Agent id '\(id.prefix(64))' is invalid: use 1 to 63 lower-case letters, digits, '.' and '-', starting with a letter or digit")
        }
        return id
    }

    static func unknownAgent(_ id: String) -> APIError {
        APIError(status: .notFound, code: 10010, title: "CF-ResourceNotFound", detail: "unknown agent: \(id) is not registered; register again")
    }

    /// Identifiers and platform-given words (keys, versions, stacks, source types) that end
    /// up in tables and logs: bounded, no control characters. Free text from apps and
    /// buildpacks is cleaned with ``UntrustedText`` instead, never refused.
    static func checkText(_ value: String, field: String, max: Int, allowEmpty: Bool = false) throws {
        if value.isEmpty, !allowEmpty { throw APIError.unprocessable("\(field) can't be blank") }
        guard value.utf8.count <= max else { throw APIError.unprocessable("\(field) is longer than \(max) bytes") }
        guard !value.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
            throw APIError.unprocessable("\(field) must not contain control characters")
        }
    }

    static func checkGuid(_ value: String, field: String) throws -> String {
        guard Rows.isGuid(value) else { throw APIError.unprocessable("\(field) must be a GUID") }
        return value.lowercased()
    }

    static func checkFinite(_ value: Double, field: String, min: Double = 0) throws {
        guard value.isFinite, value >= min else { throw APIError.unprocessable("\(field) must be a finite number of at least \(Int(min))") }
    }

    /// A host name or IP address routers can dial.
    static func checkHostAddress(_ value: String, field: String) throws {
        guard !value.isEmpty, value.utf8.count <= 253,
              value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:".contains($0)) })
        else { throw APIError.unprocessable("\(field) must be a host name or IP address") }
    }

    static func checkCapacity(_ capacity: AgentCapacity, field: String) throws {
        for (value, name) in [(capacity.memoryMB, "memory_mb"), (capacity.diskMB, "disk_mb"), (capacity.instances, "instances")] {
            guard (0...100_000_000).contains(value) else { throw APIError.unprocessable("\(field).\(name) must be between 0 and 100000000") }
        }
    }

    static func validate(_ registration: AgentRegistration) throws {
        try checkHostAddress(registration.hostAddress, field: "host_address")
        try checkCapacity(registration.capacity, field: "capacity")
        guard registration.stacks.count <= 100 else { throw APIError.unprocessable("stacks holds at most 100 names") }
        for (i, stack) in registration.stacks.enumerated() { try checkText(stack, field: "stacks[\(i)]", max: 255) }
        try checkText(registration.version, field: "version", max: 64, allowEmpty: true)
    }

    static func validate(_ report: InstanceReport, at i: Int) throws -> InstanceReport {
        var report = report
        let field = "instances[\(i)]"
        report.instanceGUID = try checkGuid(report.instanceGUID, field: "\(field).instance_guid")
        report.processGUID = try checkGuid(report.processGUID, field: "\(field).process_guid")
        report.appGUID = try checkGuid(report.appGUID, field: "\(field).app_guid")
        guard (0...100_000).contains(report.index) else { throw APIError.unprocessable("\(field).index must be between 0 and 100000") }
        if let port = report.hostPort, !(1...65535).contains(port) { throw APIError.unprocessable("\(field).host_port must be between 1 and 65535") }
        guard (1...65535).contains(report.containerPort) else { throw APIError.unprocessable("\(field).container_port must be between 1 and 65535") }
        if let address = report.containerAddress { try checkHostAddress(address, field: "\(field).container_address") }
        try checkFinite(report.since, field: "\(field).since")
        try checkFinite(report.uptimeSeconds, field: "\(field).uptime")
        try checkFinite(report.usage.cpu, field: "\(field).usage.cpu")
        for (value, name) in [(report.usage.memoryBytes, "usage.mem"), (report.usage.diskBytes, "usage.disk"),
                              (report.memoryQuotaBytes, "mem_quota"), (report.diskQuotaBytes, "disk_quota")] where value < 0 {
            throw APIError.unprocessable("\(field).\(name) must not be negative")
        }
        guard report.crashCount >= 0 else { throw APIError.unprocessable("\(field).crash_count must not be negative") }
        report.details = report.details.map { UntrustedText.clean($0, as: .reason) }
        return report
    }

    static func validate(_ event: InstanceEvent, at i: Int) throws -> InstanceEvent {
        var event = event
        let field = "events[\(i)]"
        event.instanceGUID = try checkGuid(event.instanceGUID, field: "\(field).instance_guid")
        event.processGUID = try checkGuid(event.processGUID, field: "\(field).process_guid")
        event.appGUID = try checkGuid(event.appGUID, field: "\(field).app_guid")
        guard (0...100_000).contains(event.index) else { throw APIError.unprocessable("\(field).index must be between 0 and 100000") }
        if let status = event.exitStatus, !(-1024...1024).contains(status) {
            throw APIError.unprocessable("\(field).exit_status must be between -1024 and 1024")
        }
        event.reason = UntrustedText.clean(event.reason, as: .reason)
        guard event.crashCount >= 0 else { throw APIError.unprocessable("\(field).crash_count must not be negative") }
        try checkFinite(event.timestamp, field: "\(field).timestamp")
        return event
    }

    // MARK: Register

    @Sendable func registerAgent(_ request: Request, context: ControllerContext) async throws -> Response {
        let id = try Self.agentID(context)
        let registration = try await body.decode(
            AgentRegistration.self, from: request, allowedKeys: ["host_address", "capacity", "stacks", "version"])
        try Self.validate(registration)
        let cfAPI = services.config.externalURL
        let version = try await services.db.write { conn -> Int in
            // The placement lock first: placement updates agents rows while holding it.
            try Placement.lock(conn)
            let previous = try conn.query("SELECT 1 FROM agents WHERE id = $1", [id]).first
            let capacity = registration.capacity
            try conn.query(
                """
                INSERT INTO agents(id, host_address, capacity_memory_mb, capacity_disk_mb, capacity_instances,
                  available_memory_mb, available_disk_mb, available_instances, stacks, agent_version)
                VALUES ($1, $2, $3, $4, $5, $3, $4, $5, $6, $7)
                ON CONFLICT (id) DO UPDATE SET host_address = EXCLUDED.host_address,
                  capacity_memory_mb = EXCLUDED.capacity_memory_mb, capacity_disk_mb = EXCLUDED.capacity_disk_mb,
                  capacity_instances = EXCLUDED.capacity_instances, available_memory_mb = EXCLUDED.available_memory_mb,
                  available_disk_mb = EXCLUDED.available_disk_mb, available_instances = EXCLUDED.available_instances,
                  stacks = EXCLUDED.stacks, agent_version = EXCLUDED.agent_version, state = 'active',
                  registered_at = now(), last_heartbeat_at = now()
                """,
                [id, registration.hostAddress, capacity.memoryMB, capacity.diskMB, capacity.instances, registration.stacks,
                 registration.version])
            // A returning agent's RUNNING reports are routable again (it may have been lost) and
            // may have moved to a new address.
            if previous != nil, !(try InstanceReports.routable(conn, agent: id, guids: [])).isEmpty {
                try InstanceReports.bumpRoutes(conn)
            }
            try Placement.converge(conn, apps: nil, cfAPI: cfAPI)
            try HealthController.bump(conn)
            return try conn.query("SELECT assignments_version FROM agents WHERE id = $1", [id]).rows[0].decode("assignments_version")
        }
        services.logger.info("agent registered", metadata: ["agent.id": .string(id), "agent.host": .string(registration.hostAddress)])
        return try JSONResponse.make(AgentRegistered(
            agentID: id, heartbeatIntervalSeconds: services.config.agentHeartbeatIntervalSeconds, assignmentsVersion: version))
    }

    // MARK: Heartbeat

    /// `PUT .../heartbeat`, read report by report (BatchProtocol.swift).
    struct HeartbeatBody: Decodable {
        var available: AgentCapacity
        var instances: [BatchItem<InstanceReport>]
        var assignmentsVersion: Int
        enum CodingKeys: String, CodingKey { case available, instances, assignmentsVersion = "assignments_version" }
    }

    @Sendable func heartbeat(_ request: Request, context: ControllerContext) async throws -> Response {
        let id = try Self.agentID(context)
        let beat = try await body.decode(HeartbeatBody.self, from: request, allowedKeys: ["available", "instances", "assignments_version"],
                                         repairingText: true)
        try Self.checkCapacity(beat.available, field: "available")
        guard beat.instances.count <= Self.maxReports else {
            throw APIError.unprocessable("instances holds at most \(Self.maxReports) reports")
        }
        let sorted = try Self.sortReports(beat.instances)
        let available = beat.available
        let reports = sorted.items
        // A refused report leaves what was stored for its instance as it was: dropping it would
        // take a running instance out of the route table over one bad field (or a state a newer
        // agent knows and this controller does not).
        let refused = Set(sorted.rejected.map(\.index))
        let untouched = beat.instances.indices.filter(refused.contains).compactMap { i -> String? in
            guard let guid = beat.instances[i].string("instance_guid", \.instanceGUID), Rows.isGuid(guid) else { return nil }
            return guid.lowercased()
        }
        let version = try await services.db.write { conn -> Int in
            guard let row = try conn.query(
                """
                UPDATE agents SET available_memory_mb = $2, available_disk_mb = $3, available_instances = $4, last_heartbeat_at = now()
                WHERE id = $1 AND state = 'active' RETURNING assignments_version
                """, [id, available.memoryMB, available.diskMB, available.instances]).first
            else { throw Self.unknownAgent(id) }
            let guids = reports.map(\.instanceGUID)
            let before = try InstanceReports.routable(conn, agent: id, guids: guids)
            try InstanceReports.replace(conn, agent: id, with: reports, keeping: untouched)
            if try InstanceReports.routable(conn, agent: id, guids: guids) != before { try InstanceReports.bumpRoutes(conn) }
            return try row.decode("assignments_version")
        }
        sorted.log(services.logger, batch: "heartbeat instances", metadata: ["agent.id": .string(id)])
        return try JSONResponse.make(HeartbeatAck(assignmentsVersion: version, rejected: sorted.rejected))
    }

    /// Reports validated one by one; a second report of one instance is refused (the first counts).
    static func sortReports(_ items: [BatchItem<InstanceReport>]) throws -> BatchSort<InstanceReport> {
        var sorted = try BatchSort(items) { try validate($0, at: $1) }
        var first: [String: Int] = [:]
        sorted.reject { index, report in
            if let earlier = first[report.instanceGUID] {
                return "instances[\(index)] reports instance \(report.instanceGUID) again (first at instances[\(earlier)])"
            }
            first[report.instanceGUID] = index
            return nil
        }
        return sorted
    }

    // MARK: Assignments

    /// `after` and `wait` of a long-poll (`wait` 0...60, default 30).
    static func longPoll(_ request: Request) throws -> (after: Int?, wait: Int) {
        let query = try QueryParameters(rawQuery: request.uri.query)
        try query.requireOnly(["after", "wait"])
        let after = try query.int("after", range: 0...Int.max)
        let wait = try query.int("wait", range: 0...maxWaitSeconds) ?? 30
        return (after, wait)
    }

    @Sendable func assignments(_ request: Request, context: ControllerContext) async throws -> Response {
        let id = try Self.agentID(context)
        let (after, wait) = try Self.longPoll(request)
        let subscription = try await services.feed.subscribe(channel: AgentProtocol.assignmentsChannel, payload: id)
        var answer = try await readAssignments(id)
        if wait > 0, let after, answer.version == after {
            if await subscription.wait(timeout: .seconds(wait)) != .timedOut {
                answer = try await readAssignments(id)
            }
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: answer.json)))
    }

    /// The agent's version and set, as JSON spliced from the stored assignments.
    private func readAssignments(_ id: String) async throws -> (version: Int, json: String) {
        try await services.db.read { conn in
            guard let agent = try conn.query("SELECT assignments_version FROM agents WHERE id = $1", [id]).first else {
                throw Self.unknownAgent(id)
            }
            let version = try agent.decode("assignments_version", as: Int.self)
            let specs = try conn.query(
                "SELECT spec FROM instances WHERE agent_id = $1 ORDER BY app_guid, process_guid, index", [id]
            ).map { try $0.decode("spec", as: String.self) }
            return (version, "{\"instances\":[\(specs.joined(separator: ","))],\"version\":\(version)}")
        }
    }

    // MARK: Events

    /// `POST .../events`, read event by event (BatchProtocol.swift).
    struct EventsBody: Decodable {
        var events: [BatchItem<InstanceEvent>]
    }

    @Sendable func events(_ request: Request, context: ControllerContext) async throws -> Response {
        let id = try Self.agentID(context)
        let batch = try await body.decode(EventsBody.self, from: request, allowedKeys: ["events"], repairingText: true)
        guard batch.events.count <= Self.maxEvents else { throw APIError.unprocessable("events holds at most \(Self.maxEvents) events") }
        let sorted = try BatchSort(batch.events) { try Self.validate($0, at: $1) }
        let events = sorted.items
        let keep = services.config.appLogLines
        try await services.db.write { conn in
            guard try conn.query("SELECT 1 FROM agents WHERE id = $1", [id]).first != nil else { throw Self.unknownAgent(id) }
            let guids = events.map(\.instanceGUID)
            let before = try InstanceReports.routable(conn, agent: nil, guids: guids)
            var lines: [LogLine] = []
            for var event in events {
                try InstanceReports.apply(conn, agent: id, event: event)
                if event.type == .crashed || event.type == .failed {
                    // The index's crash count lives with the placement, so it carries across restarts.
                    if let count = try conn.query(
                        """
                        UPDATE instances SET crash_count = crash_count + 1, last_crash_at = $2, exit_description = $3
                        WHERE guid = $1 RETURNING crash_count
                        """, [event.instanceGUID, event.timestamp, Self.exitDescription(event)]).first {
                        event.crashCount = try count.decode("crash_count")
                    }
                    try Self.recordCrash(conn, agent: id, event: event)
                }
                lines.append(Self.cellLine(agent: id, event: event))
            }
            try HealthController.bump(conn)
            if try InstanceReports.routable(conn, agent: nil, guids: guids) != before { try InstanceReports.bumpRoutes(conn) }
            try AppLogStore.append(conn, lines, keep: keep)
        }
        sorted.log(services.logger, batch: "instance events", metadata: ["agent.id": .string(id)])
        return try JSONResponse.make(BatchAnswer(accepted: events.count, rejected: sorted.rejected))
    }

    /// A crash in words: "exited with status 3", "out of memory", or the agent's reason.
    static func exitDescription(_ event: InstanceEvent) -> String {
        let status = event.exitStatus.map { " (exit status \($0))" } ?? ""
        let reason = event.reason.isEmpty ? (event.type == .failed ? "failed to start" : "exited") : event.reason
        return String((reason + status).prefix(1000))
    }

    /// The line the app's log gets from `CELL` for an event.
    static func cellLine(agent: String, event: InstanceEvent) -> LogLine {
        let status = event.exitStatus.map { " (exit status \($0))" } ?? ""
        let why = event.reason.isEmpty ? "" : ": \(event.reason)"
        let message: String
        switch event.type {
        case .running: message = "Container became healthy (instance \(event.index), \(event.instanceGUID))"
        case .crashed: message = "Instance \(event.index) (\(event.instanceGUID)) exited\(why)\(status); crash count \(event.crashCount)"
        case .failed: message = "Instance \(event.index) (\(event.instanceGUID)) failed to start\(why)\(status)"
        case .stopped: message = "Instance \(event.index) (\(event.instanceGUID)) stopped on agent \(agent)"
        }
        let nanos = (event.timestamp * 1e9).rounded()
        let timestamp = nanos.isFinite && abs(nanos) < 9e18 ? Int64(nanos) : Int64(Date().timeIntervalSince1970 * 1e9)
        return LogLine(appGUID: event.appGUID, timestamp: timestamp, sourceType: "CELL", sourceInstance: String(event.index),
                       messageType: event.type == .crashed || event.type == .failed ? .err : .out, message: message)
    }

    struct CrashData: Encodable {
        var instance: String
        var index: Int
        var exitStatus: Int?
        var reason: String
        var crashCount: Int
        var crashTimestamp: Int64
        var cellID: String
        var processType: String
        enum CodingKeys: String, CodingKey {
            case instance, index, exitStatus = "exit_status", reason, crashCount = "crash_count",
                 crashTimestamp = "crash_timestamp", cellID = "cell_id", processType = "process_type"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(instance, forKey: .instance)
            try c.encode(index, forKey: .index)
            try c.encode(exitStatus, forKey: .exitStatus)  // null when the process did not exit on its own
            try c.encode(reason, forKey: .reason)
            try c.encode(crashCount, forKey: .crashCount)
            try c.encode(crashTimestamp, forKey: .crashTimestamp)
            try c.encode(cellID, forKey: .cellID)
            try c.encode(processType, forKey: .processType)
        }
    }

    /// `audit.app.process.crash`, as CF records it: the process is the actor, the app the target.
    static func recordCrash(_ conn: PostgresConnection, agent: String, event: InstanceEvent) throws {
        try recordProcessEvent(conn, "audit.app.process.crash", app: event.appGUID, process: event.processGUID) { type in
            CrashData(
                instance: event.instanceGUID, index: event.index, exitStatus: event.exitStatus,
                reason: event.reason.isEmpty ? "CRASHED" : event.reason, crashCount: event.crashCount,
                crashTimestamp: cellLine(agent: agent, event: event).timestamp, cellID: agent, processType: type)
        }
    }

    /// An audit event whose actor is the platform acting on a process (crash, rescheduling), its
    /// target the app; `data` gets the process type. Nothing when the app is gone (nobody can
    /// read its events).
    static func recordProcessEvent(_ conn: PostgresConnection, _ eventType: String, app: String, process: String,
                                   data: (_ processType: String) throws -> any Encodable) throws {
        guard let row = try conn.query(
            """
            SELECT a.name, a.space_guid, s.organization_guid, p.type FROM apps a JOIN spaces s ON s.guid = a.space_guid
              LEFT JOIN processes p ON p.guid = $2 WHERE a.guid = $1
            """, [app, process]).first
        else { return }
        let type = try row.decode("type", as: String?.self) ?? "web"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(try data(type)), as: UTF8.self)
        try conn.query(
            """
            INSERT INTO audit_events(guid, type, actor_guid, actor_type, actor_name, target_guid, target_type, target_name,
              space_guid, organization_guid, data)
            VALUES ($1, $2, $3, 'process', $4, $5, 'app', $6, $7, $8, $9::jsonb)
            """,
            [Rows.newGuid(), eventType, process, type, app, try row.decode("name", as: String.self),
             try row.decode("space_guid", as: String.self), try row.decode("organization_guid", as: String.self), json])
    }
}
