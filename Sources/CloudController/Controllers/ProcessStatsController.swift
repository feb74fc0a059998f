import Foundation
import Hummingbird
import PlatformModels
import PostgresStore

/// `GET /v3/processes/:guid/stats` (and `/v3/apps/:guid/processes/:type/stats`) in CF's shape:
/// one resource per index `0..<instances`, visible to whoever may see the process.
///
/// An index's state comes from its current instance: what its agent last reported (RUNNING,
/// STARTING, CRASHED; STOPPING and DOWN show as DOWN), STARTING while placed but not reported
/// yet, DOWN when no agent has room for it or the app is stopped.
struct ProcessStatsController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("processes/:guid/stats", use: stats)
        group.get("apps/:guid/processes/:type/stats", use: stats)
    }

    struct Stats: Codable, Sendable, Equatable {
        struct Usage: Codable, Sendable, Equatable {
            var time: String
            var cpu: Double
            var mem: Int64
            var disk: Int64
        }
        struct Port: Codable, Sendable, Equatable {
            var external: Int
            var `internal`: Int
        }
        var type: String
        var index: Int
        var state: String
        var usage: Usage
        var host: String
        var instancePorts: [Port]
        var uptime: Int
        var memQuota: Int64
        var diskQuota: Int64
        var fdsQuota: Int
        var isolationSegment: String?
        var details: String?
        /// Crashes of this index since its count was last reset, and the last one (extensions to CF's shape).
        var crashCount = 0
        var lastCrashAt: String?

        enum CodingKeys: String, CodingKey {
            case type, index, state, usage, host, instancePorts = "instance_ports", uptime, memQuota = "mem_quota",
                 diskQuota = "disk_quota", fdsQuota = "fds_quota", isolationSegment = "isolation_segment", details
            case crashCount = "crash_count", lastCrashAt = "last_crash_at"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(type, forKey: .type)
            try c.encode(index, forKey: .index)
            try c.encode(state, forKey: .state)
            try c.encode(usage, forKey: .usage)
            try c.encode(host, forKey: .host)
            try c.encode(instancePorts, forKey: .instancePorts)
            try c.encode(uptime, forKey: .uptime)
            try c.encode(memQuota, forKey: .memQuota)
            try c.encode(diskQuota, forKey: .diskQuota)
            try c.encode(fdsQuota, forKey: .fdsQuota)
            try c.encode(isolationSegment, forKey: .isolationSegment)  // CF renders both as null when unset
            try c.encode(details, forKey: .details)
            try c.encode(crashCount, forKey: .crashCount)
            try c.encode(lastCrashAt, forKey: .lastCrashAt)
        }
    }

    struct StatsList: Codable, Sendable {
        var resources: [Stats]
    }

    @Sendable func stats(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        try QueryParameters(rawQuery: request.uri.query).requireOnly([])
        let target: (guid: String?, app: String?, type: String?)
        if let type = context.parameters.get("type") {
            target = (nil, try services.guidParameter(context, resource: "App"), type)
        } else {
            target = (try services.guidParameter(context, resource: "Process"), nil, nil)
        }
        let resources = try await services.db.read { conn in
            let (row, _) = try ProcessesController.load(conn, guid: target.guid, app: target.app, type: target.type, actor: actor)
            return try Self.stats(conn, process: row)
        }
        return try JSONResponse.make(StatsList(resources: resources))
    }

    static func stats(_ conn: PostgresConnection, process: PostgresRow) throws -> [Stats] {
        let guid = try process.decode("guid", as: String.self)
        let type = try process.decode("type", as: String.self)
        let count = try process.decode("instances", as: Int.self)
        let memory = Int64(try process.decode("memory_in_mb", as: Int.self)) << 20
        let disk = Int64(try process.decode("disk_in_mb", as: Int.self)) << 20
        let started = try conn.query(
            "SELECT a.state FROM apps a JOIN processes p ON p.app_guid = a.guid WHERE p.guid = $1", [guid]
        ).first?.decode("state", as: String.self) == "STARTED"
        let rows = try conn.query(
            """
            SELECT i.index, i.agent_id, i.memory_mb, i.disk_mb, i.crash_count, i.last_crash_at, i.placement_error, ir.state, ir.host_port, ir.container_port, ir.uptime, ir.cpu,
              ir.mem, ir.disk, ir.mem_quota, ir.disk_quota, ir.details, ag.host_address, ag.state AS agent_state
            FROM instances i LEFT JOIN instance_reports ir ON ir.instance_guid = i.guid
              LEFT JOIN agents ag ON ag.id = ir.agent_id
            WHERE i.process_guid = $1
            """, [guid])
        // While an instance moves off a draining agent its index has two: the running one shows.
        var byIndex: [Int: PostgresRow] = [:]
        for row in rows {
            let index = try row.decode("index", as: Int.self)
            if let kept = byIndex[index], try kept.decode("state", as: String?.self) == "RUNNING" { continue }
            byIndex[index] = row
        }
        let now = Rows.iso8601(Date())
        return try (0..<max(0, count)).map { index in
            var stats = Stats(type: type, index: index, state: "DOWN", usage: .init(time: now, cpu: 0, mem: 0, disk: 0), host: "",
                              instancePorts: [], uptime: 0, memQuota: memory, diskQuota: disk, fdsQuota: 16384)
            guard started, let row = byIndex[index] else { return stats }
            stats.memQuota = Int64(try row.decode("memory_mb", as: Int.self)) << 20
            stats.diskQuota = Int64(try row.decode("disk_mb", as: Int.self)) << 20
            stats.crashCount = try row.decode("crash_count")
            stats.lastCrashAt = try row.decode("last_crash_at", as: Double?.self).map { Rows.iso8601(Date(timeIntervalSince1970: $0)) }
            guard try row.decode("agent_id", as: String?.self) != nil else {
                let why = try row.decode("placement_error", as: String?.self) ?? "insufficient resources"
                stats.details = "\(why): no execution agent has room for this instance"
                return stats
            }
            guard let state = try row.decode("state", as: String?.self) else {
                stats.state = "STARTING"
                return stats
            }
            guard try row.decode("agent_state", as: String?.self) == "active" else {
                stats.details = "the execution agent running this instance was lost"
                return stats
            }
            switch state {
            case "RUNNING", "STARTING", "CRASHED": stats.state = state
            default: stats.state = "DOWN"
            }
            stats.usage = .init(time: now, cpu: try row.decode("cpu"), mem: try row.decode("mem"), disk: try row.decode("disk"))
            if let port = try row.decode("host_port", as: Int?.self) {
                stats.host = try row.decode("host_address", as: String?.self) ?? ""
                stats.instancePorts = [.init(external: port, internal: try row.decode("container_port"))]
            }
            stats.uptime = Int(try row.decode("uptime", as: Double.self))
            if let quota = try row.decode("mem_quota", as: Int64?.self), quota > 0 { stats.memQuota = quota }
            if let quota = try row.decode("disk_quota", as: Int64?.self), quota > 0 { stats.diskQuota = quota }
            stats.details = try row.decode("details", as: String?.self)
            return stats
        }
    }
}
