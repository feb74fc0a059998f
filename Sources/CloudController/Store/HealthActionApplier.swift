import Foundation
import PlatformModels
import PostgresStore

/// Applies one health manager decision inside the caller's transaction (which holds the
/// placement lock and the lease). Each action is checked against the state as it is now: what
/// no longer applies (a user scaled down, the instance already went, the agent is draining) is
/// skipped with the reason rather than applied blindly.
enum HealthActionApplier {
    /// nil when applied, else why it was skipped.
    static func apply(_ conn: PostgresConnection, _ action: HealthAction, cfAPI: String, keepLogLines: Int) throws -> String? {
        switch action.kind {
        case .stop: return try stop(conn, action)
        case .resetCrashCount:
            let rows = try conn.query("UPDATE instances SET crash_count = 0 WHERE guid = $1 AND crash_count > 0 RETURNING guid",
                                      [action.instance]).count
            return rows == 1 ? nil : "instance gone or already reset"
        case .restart: return try restart(conn, action, keepLogLines: keepLogLines)
        case .place, .unplaced: return try place(conn, action, cfAPI: cfAPI)
        }
    }

    private static func stop(_ conn: PostgresConnection, _ action: HealthAction) throws -> String? {
        guard let row = try conn.query(
            "DELETE FROM instances WHERE guid = $1 RETURNING app_guid, process_guid, index, agent_id, crash_count", [action.instance]
        ).first else { return "instance already gone" }
        if action.reason == "evacuated" {
            try recordRescheduling(conn, app: try row.decode("app_guid"), process: try row.decode("process_guid"),
                                   instance: action.instance ?? "", index: try row.decode("index"),
                                   agent: try row.decode("agent_id", as: String?.self), reason: "Agent draining: instance moved to another agent",
                                   crashCount: try row.decode("crash_count"))
        }
        return nil
    }

    private static func restart(_ conn: PostgresConnection, _ action: HealthAction, keepLogLines: Int) throws -> String? {
        guard let row = try conn.query(
            """
            SELECT i.guid, i.process_guid, i.app_guid, i.index, i.agent_id, i.process_version, i.droplet_guid, i.memory_mb, i.disk_mb,
              i.spec, i.crash_count, i.last_crash_at, i.exit_description, r.state
            FROM instances i LEFT JOIN instance_reports r ON r.instance_guid = i.guid WHERE i.guid = $1 FOR UPDATE OF i
            """, [action.instance]).first
        else { return "instance gone" }
        guard try row.decode("state", as: String?.self) == InstanceState.crashed.rawValue else { return "instance is not crashed" }
        guard let agent = try row.decode("agent_id", as: String?.self) else { return "instance has no agent" }
        var spec = try row.decode("spec", as: PostgresJSON.self).decode(as: InstanceAssignment.self)
        let guid = Rows.newGuid()
        spec.instanceGUID = guid
        let crashes = try row.decode("crash_count", as: Int.self)
        try conn.query("DELETE FROM instances WHERE guid = $1", [action.instance])
        try conn.query(
            """
            INSERT INTO instances(guid, process_guid, app_guid, index, agent_id, process_version, droplet_guid, memory_mb, disk_mb, spec,
              crash_count, last_crash_at, exit_description)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13)
            """,
            [guid, try row.decode("process_guid", as: String.self), try row.decode("app_guid", as: String.self),
             try row.decode("index", as: Int.self), agent, try row.decode("process_version", as: String.self),
             try row.decode("droplet_guid", as: String.self), try row.decode("memory_mb", as: Int.self),
             try row.decode("disk_mb", as: Int.self), try Placement.specJSON(spec), crashes,
             try row.decode("last_crash_at", as: Double?.self), try row.decode("exit_description", as: String?.self)])
        let line = LogLine(
            appGUID: spec.appGUID, timestamp: Int64(Date().timeIntervalSince1970 * 1e9), sourceType: "CELL",
            sourceInstance: String(spec.index), messageType: .out,
            message: "Restarting instance \(spec.index) after \(crashes == 1 ? "1 crash" : "\(crashes) crashes") (new instance \(guid))")
        _ = try AppLogStore.append(conn, [line], keep: keepLogLines)
        return nil
    }

    /// `place` and `unplaced`: removes the instances the action replaces, then gives the index
    /// an instance on the agent (or records why it has none).
    private static func place(_ conn: PostgresConnection, _ action: HealthAction, cfAPI: String) throws -> String? {
        guard let process = try conn.query(
            """
            SELECT p.guid, p.app_guid, p.instances, p.version, a.droplet_guid,
              (a.state = 'STARTED' AND d.state = 'STAGED' AND d.blob_sha256 IS NOT NULL) AS runnable
            FROM processes p JOIN apps a ON a.guid = p.app_guid LEFT JOIN droplets d ON d.guid = a.droplet_guid WHERE p.guid = $1
            """, [action.process]).first,
            try process.decode("runnable", as: Bool?.self) == true, action.index < (try process.decode("instances", as: Int.self))
        else { return "no longer desired" }
        let version = try process.decode("version", as: String.self)
        let droplet = try process.decode("droplet_guid", as: String.self)
        if action.kind == .place {
            guard let agent = try conn.query("SELECT state, draining FROM agents WHERE id = $1", [action.agent]).first,
                  try agent.decode("state", as: String.self) == "active", try !agent.decode("draining", as: Bool.self)
            else { return "agent \(action.agent ?? "") is not available" }
        }

        // The replaced instances go; their crash count carries over.
        var crashes = 0
        var lastCrash: Double?
        var exitDescription: String?
        let replaced = try conn.query(
            """
            DELETE FROM instances WHERE guid = ANY($1::uuid[]) AND process_guid = $2 AND index = $3
            RETURNING guid, app_guid, agent_id, crash_count, last_crash_at, exit_description
            """, [action.replaces ?? [], action.process, action.index])
        for row in replaced {
            crashes = max(crashes, try row.decode("crash_count"))
            lastCrash = try row.decode("last_crash_at", as: Double?.self) ?? lastCrash
            exitDescription = try row.decode("exit_description", as: String?.self) ?? exitDescription
            if let agent = try row.decode("agent_id", as: String?.self) {
                try recordRescheduling(conn, app: try row.decode("app_guid"), process: action.process, instance: try row.decode("guid"),
                                       index: action.index, agent: agent, reason: "Agent \(agent) lost: instance placed again",
                                       crashCount: try row.decode("crash_count"))
            }
        }

        // What the index has left of the current generation.
        let left = try conn.query(
            """
            SELECT i.guid, i.agent_id, coalesce(ag.state = 'active' AND NOT ag.draining, false) AS usable
            FROM instances i LEFT JOIN agents ag ON ag.id = i.agent_id
            WHERE i.process_guid = $1 AND i.index = $2 AND i.process_version = $3 AND i.droplet_guid = $4
            """, [action.process, action.index, version, droplet])
        let unplaced = try left.first { try $0.decode("agent_id", as: String?.self) == nil }
        if action.kind == .unplaced {
            let reason = action.reason ?? "insufficient resources"
            if let unplaced {
                try conn.query("UPDATE instances SET placement_error = $2 WHERE guid = $1", [try unplaced.decode("guid", as: String.self), reason])
                return nil
            }
            guard left.isEmpty else { return "index already has an instance" }
            try insert(conn, action, version: version, droplet: droplet, agent: nil, placementError: reason, cfAPI: cfAPI,
                       crashes: crashes, lastCrash: lastCrash, exitDescription: exitDescription)
            return nil
        }
        if try left.contains(where: { try $0.decode("usable", as: Bool.self) }) { return "index already placed" }
        if let unplaced {
            try conn.query("UPDATE instances SET agent_id = $2, placement_error = NULL WHERE guid = $1",
                           [try unplaced.decode("guid", as: String.self), action.agent])
            return nil
        }
        try insert(conn, action, version: version, droplet: droplet, agent: action.agent, placementError: nil, cfAPI: cfAPI,
                   crashes: crashes, lastCrash: lastCrash, exitDescription: exitDescription)
        return nil
    }

    private static func insert(_ conn: PostgresConnection, _ action: HealthAction, version: String, droplet: String, agent: String?,
                               placementError: String?, cfAPI: String, crashes: Int, lastCrash: Double?, exitDescription: String?) throws {
        // A sibling of the same generation gives the assignment (as the interim placement does).
        var spec: InstanceAssignment
        if let sibling = try conn.query(
            "SELECT spec FROM instances WHERE process_guid = $1 AND process_version = $2 AND droplet_guid = $3 LIMIT 1",
            [action.process, version, droplet]).first {
            spec = try sibling.decode("spec", as: PostgresJSON.self).decode(as: InstanceAssignment.self)
        } else {
            spec = try Placement.buildAssignment(conn, processGuid: action.process, cfAPI: cfAPI)
        }
        let guid = Rows.newGuid()
        spec.instanceGUID = guid
        spec.index = action.index
        try conn.query(
            """
            INSERT INTO instances(guid, process_guid, app_guid, index, agent_id, process_version, droplet_guid, memory_mb, disk_mb, spec,
              crash_count, last_crash_at, exit_description, placement_error)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14)
            """,
            [guid, action.process, spec.appGUID, action.index, agent, version, droplet, spec.memoryMB, spec.diskMB, try Placement.specJSON(spec),
             crashes, lastCrash, exitDescription, placementError])
    }

    /// `audit.app.process.rescheduling`: an instance moved because of its agent, not itself.
    static func recordRescheduling(_ conn: PostgresConnection, app: String, process: String, instance: String, index: Int,
                                   agent: String?, reason: String, crashCount: Int) throws {
        try AgentsController.recordProcessEvent(conn, "audit.app.process.rescheduling", app: app, process: process) { type in
            [
                "instance": JSONValue.string(instance), "index": .number(Double(index)), "cell_id": agent.map(JSONValue.string) ?? .null,
                "reason": .string(reason), "crash_count": .number(Double(crashCount)), "process_type": .string(type),
            ]
        }
    }
}
