import Foundation
import PlatformModels
import PlatformRules
import PostgresStore

/// Placement of instances on execution agents when a user's change needs it.
///
/// For each process of a STARTED app whose current droplet is STAGED, instances `0..<n` must
/// exist for the current (process version, droplet); new ones go where
/// ``PlatformRules/PlacementRule`` puts them (the rule the health manager applies too: spread,
/// then least loaded, among the active agents with the app's stack and room), and stay unplaced
/// (no agent) when none fits. Everything else goes: extra indexes, older generations, instances
/// of STOPPED apps, and instances on lost agents (re-created under a new guid so two agents never
/// run the same one).
///
/// `decide` (Placement+Decision.swift) is the pure decision; `converge` reads the state, decides
/// and applies it inside the caller's transaction, under the placement lock. The `instances`
/// triggers bump `agents.assignments_version` and NOTIFY `cflike_assignments` for every agent
/// whose set changed.
enum Placement {
    // MARK: Applying it

    /// Serialises placements, so two requests never place on the same room or index.
    static let lockKey = 0x6366_6c6b_706c_6163  // "cflkplac"

    /// Takes the placement lock; callers that also update `agents` rows take it first.
    static func lock(_ conn: PostgresConnection) throws {
        try conn.query("SELECT pg_advisory_xact_lock($1)", [lockKey])
    }

    /// Converges `apps` (nil: every STARTED app and every app that has instances) in the
    /// caller's transaction. `cfAPI` is the controller's external URL for `VCAP_APPLICATION`.
    @discardableResult
    static func converge(_ conn: PostgresConnection, apps: [String]?, cfAPI: String) throws -> Decision {
        try lock(conn)
        let desired = try conn.query(
            """
            SELECT p.guid, p.app_guid, p.type, p.instances, p.memory_in_mb, p.disk_in_mb, p.version, a.stack,
              CASE WHEN a.state = 'STARTED' AND d.state = 'STAGED' AND d.blob_sha256 IS NOT NULL THEN a.droplet_guid END AS droplet_guid
            FROM processes p JOIN apps a ON a.guid = p.app_guid LEFT JOIN droplets d ON d.guid = a.droplet_guid
            WHERE CASE WHEN $1::uuid[] IS NULL
              THEN a.state = 'STARTED' OR EXISTS (SELECT 1 FROM instances i WHERE i.app_guid = a.guid)
              ELSE a.guid = ANY($1::uuid[]) END
            """, [apps]).map { row in
            DesiredProcess(
                guid: try row.decode("guid"), appGuid: try row.decode("app_guid"), type: try row.decode("type"),
                stack: try row.decode("stack", as: String?.self), version: try row.decode("version"),
                dropletGuid: try row.decode("droplet_guid", as: String?.self), instances: try row.decode("instances"),
                memoryMB: try row.decode("memory_in_mb"), diskMB: try row.decode("disk_in_mb"))
        }
        let scope = apps ?? Array(Set(desired.map(\.appGuid)))
        let current = try conn.query(
            """
            SELECT guid, process_guid, index, agent_id, process_version, droplet_guid, memory_mb, disk_mb
            FROM instances WHERE app_guid = ANY($1::uuid[])
            """, [scope]).map { row in
            CurrentInstance(
                guid: try row.decode("guid"), processGuid: try row.decode("process_guid"), index: try row.decode("index"),
                agentID: try row.decode("agent_id", as: String?.self), processVersion: try row.decode("process_version"),
                dropletGuid: try row.decode("droplet_guid"), memoryMB: try row.decode("memory_mb"), diskMB: try row.decode("disk_mb"))
        }
        let agentRows = try conn.query(
            """
            SELECT a.id, a.state, a.draining, a.stacks, a.capacity_memory_mb, a.capacity_disk_mb, a.capacity_instances,
              coalesce(sum(i.memory_mb), 0) AS listed_memory, coalesce(sum(i.disk_mb), 0) AS listed_disk,
              count(i.guid) AS listed_instances
            FROM agents a LEFT JOIN instances i ON i.agent_id = a.id GROUP BY a.id
            """)
        let drainingIDs = try agentRows.filter { try $0.decode("state", as: String.self) == "active" && $0.decode("draining", as: Bool.self) }
            .map { try $0.decode("id", as: String.self) }
        // A draining agent keeps what it runs until the health manager moves it; nothing new goes there.
        // No reported free room: the rows this decision deletes give their room back at once
        // (a restart takes the place of what it replaces), which a report from before cannot know.
        let agents = try agentRows.map { row in
            PlacementRule.Agent(
                id: try row.decode("id"), stacks: try row.decode("stacks"),
                accepting: try row.decode("state", as: String.self) == "active" && !(try row.decode("draining", as: Bool.self)),
                capacity: PlacementRule.Resources(memoryMB: try row.decode("capacity_memory_mb"), diskMB: try row.decode("capacity_disk_mb"),
                                                  instances: try row.decode("capacity_instances")),
                listed: PlacementRule.Resources(memoryMB: try row.decode("listed_memory"), diskMB: try row.decode("listed_disk"),
                                                instances: try row.decode("listed_instances")))
        }
        let decision = decide(desired: desired, current: current, agents: agents, draining: Set(drainingIDs))
        guard !decision.isEmpty else { return decision }
        try apply(conn, decision, desired: desired, cfAPI: cfAPI)
        try HealthController.bump(conn)
        return decision
    }

    private static func apply(_ conn: PostgresConnection, _ decision: Decision, desired: [DesiredProcess], cfAPI: String) throws {
        // Assignments of new instances: copied from their generation's siblings (read before
        // they may be deleted), else built once per process from the current state.
        var specs: [String: InstanceAssignment] = [:]
        let templates = Array(Set(decision.creations.compactMap(\.template)))
        if !templates.isEmpty {
            for row in try conn.query("SELECT guid, spec FROM instances WHERE guid = ANY($1::uuid[])", [templates]) {
                specs[try row.decode("guid")] = try row.decode("spec", as: PostgresJSON.self).decode(as: InstanceAssignment.self)
            }
        }
        if !decision.deletions.isEmpty {
            try conn.query("DELETE FROM instances WHERE guid = ANY($1::uuid[])", [decision.deletions])
        }
        if !decision.placements.isEmpty {
            try conn.query(
                """
                UPDATE instances SET agent_id = p.agent FROM unnest($1::uuid[], $2::text[]) AS p(guid, agent)
                WHERE instances.guid = p.guid
                """, [decision.placements.map(\.instanceGuid), decision.placements.map(\.agentID)])
        }
        guard !decision.creations.isEmpty else { return }
        let processes = Dictionary(desired.map { ($0.guid, $0) }, uniquingKeysWith: { first, _ in first })
        var fresh: [String: InstanceAssignment] = [:]
        var guids: [String] = [], processGuids: [String] = [], appGuids: [String] = [], indexes: [Int] = []
        var agents: [String?] = [], versions: [String] = [], droplets: [String] = [], memory: [Int] = [], disk: [Int] = []
        var specTexts: [String] = []
        for creation in decision.creations {
            guard let process = processes[creation.processGuid], let droplet = process.dropletGuid else { continue }
            var spec: InstanceAssignment
            if let template = creation.template, let copied = specs[template] {
                spec = copied
            } else if let built = fresh[process.guid] {
                spec = built
            } else {
                spec = try buildAssignment(conn, processGuid: process.guid, cfAPI: cfAPI)
                fresh[process.guid] = spec
            }
            spec.instanceGUID = creation.guid
            spec.index = creation.index
            guids.append(creation.guid)
            processGuids.append(process.guid)
            appGuids.append(process.appGuid)
            indexes.append(creation.index)
            agents.append(creation.agentID)
            versions.append(spec.processVersion)
            droplets.append(droplet)
            memory.append(spec.memoryMB)
            disk.append(spec.diskMB)
            specTexts.append(try specJSON(spec))
        }
        try conn.query(
            """
            INSERT INTO instances(guid, process_guid, app_guid, index, agent_id, process_version, droplet_guid, memory_mb, disk_mb, spec)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::uuid[], $7::uuid[], $8::int[],
                                 $9::int[], $10::jsonb[])
            """, [guids, processGuids, appGuids, indexes, agents, versions, droplets, memory, disk, specTexts])
    }

    /// An assignment as stored in `instances.spec` (and spliced into agents' answers as is).
    static func specJSON(_ spec: InstanceAssignment) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(spec), as: UTF8.self)
    }

    /// Removes an app's instances before the app itself goes (the triggers tell its agents).
    static func release(_ conn: PostgresConnection, app: String) throws {
        try lock(conn)
        try conn.query("DELETE FROM instances WHERE app_guid = $1", [app])
    }

    // MARK: Assignment contents

    /// What an agent needs to run an instance of `processGuid` as things stand now (instance
    /// guid and index are filled in by the caller).
    static func buildAssignment(_ conn: PostgresConnection, processGuid: String, cfAPI: String) throws -> InstanceAssignment {
        guard let row = try conn.query(
            """
            SELECT p.guid, p.type, p.command, p.memory_in_mb, p.disk_in_mb, p.health_check_type, p.health_check_endpoint,
              p.health_check_timeout, p.health_check_invocation_timeout, p.version,
              a.guid AS app_guid, a.name AS app_name, a.environment_variables, a.droplet_guid,
              d.blob_sha256, d.process_types, s.guid AS space_guid, s.name AS space_name,
              o.guid AS organization_guid, o.name AS organization_name
            FROM processes p JOIN apps a ON a.guid = p.app_guid JOIN spaces s ON s.guid = a.space_guid
              JOIN organizations o ON o.guid = s.organization_guid JOIN droplets d ON d.guid = a.droplet_guid
            WHERE p.guid = $1
            """, [processGuid]).first
        else { throw PlacementError("process \(processGuid) has no current droplet to place") }
        let appGuid = try row.decode("app_guid", as: String.self)
        let appName = try row.decode("app_name", as: String.self)
        let type = try row.decode("type", as: String.self)
        let version = try row.decode("version", as: String.self)
        let memory = try row.decode("memory_in_mb", as: Int.self)
        let disk = try row.decode("disk_in_mb", as: Int.self)
        let dropletGuid = try row.decode("droplet_guid", as: String.self)
        let processTypes = row["process_types"].flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
        let command = try row.decode("command", as: String?.self) ?? processTypes[type] ?? ""
        let uris = try conn.query(
            """
            SELECT DISTINCT CASE WHEN r.host = '' THEN dm.name ELSE r.host || '.' || dm.name END || r.path AS uri
            FROM route_destinations rd JOIN routes r ON r.guid = rd.route_guid JOIN domains dm ON dm.guid = r.domain_guid
            WHERE rd.app_guid = $1 ORDER BY 1
            """, [appGuid]).map { try $0.decode("uri", as: String.self) }
        let fds = 16384
        let uriValues = JSONValue.array(uris.map(JSONValue.string))
        let vcap: [String: JSONValue] = [
            "application_id": .string(appGuid), "application_name": .string(appName), "name": .string(appName),
            "application_uris": uriValues, "uris": uriValues,
            "application_version": .string(version), "version": .string(version),
            "space_id": .string(try row.decode("space_guid")), "space_name": .string(try row.decode("space_name")),
            "organization_id": .string(try row.decode("organization_guid")),
            "organization_name": .string(try row.decode("organization_name")),
            "process_id": .string(processGuid), "process_type": .string(type),
            "limits": .object(["mem": .number(Double(memory)), "disk": .number(Double(disk)), "fds": .number(Double(fds))]),
            "cf_api": .string(cfAPI),
        ]
        let hcType = HealthCheckSpec.Kind(rawValue: try row.decode("health_check_type")) ?? .port
        let endpoint = try row.decode("health_check_endpoint", as: String?.self)
        let health = HealthCheckSpec(
            type: hcType, endpoint: hcType == .http ? (endpoint ?? "/") : nil,
            timeoutSeconds: try row.decode("health_check_timeout", as: Int?.self) ?? 60,
            invocationTimeoutSeconds: try row.decode("health_check_invocation_timeout", as: Int?.self) ?? 1)
        return InstanceAssignment(
            instanceGUID: "", appGUID: appGuid, appName: appName, processGUID: processGuid, processType: type,
            processVersion: version, index: 0,
            droplet: DropletRef(guid: dropletGuid, sha256: try row.decode("blob_sha256"),
                                downloadPath: "/internal/v1/droplets/\(dropletGuid)/download"),
            command: command, memoryMB: memory, diskMB: disk, fileDescriptors: fds, healthCheck: health,
            environment: try Rows.stringMap(row, "environment_variables"), vcapApplication: vcap, vcapServices: "{}")
    }
}

/// Placement found the database in a state it cannot place from.
struct PlacementError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
