import Foundation
import PlatformModels
import PostgresStore

/// The actual state agents report, and what of it the route table depends on.
enum InstanceReports {
    /// The routable facts of the RUNNING reports of `agent` or of `guids`: one string per
    /// backend, so two snapshots compare equal exactly when the route table would be the same.
    static func routable(_ conn: PostgresConnection, agent: String?, guids: [String]) throws -> Set<String> {
        let rows = try conn.query(
            """
            SELECT instance_guid, agent_id, host_port, container_address, container_port FROM instance_reports
            WHERE state = 'RUNNING' AND (agent_id = $1 OR instance_guid = ANY($2::uuid[]))
            """, [agent, guids])
        return Set(rows.map { row in
            [row["instance_guid"], row["agent_id"], row["host_port"], row["container_address"], row["container_port"]]
                .map { $0 ?? "-" }.joined(separator: "|")
        })
    }

    /// Bumps the route table's version and wakes the routers, in the caller's transaction.
    static func bumpRoutes(_ conn: PostgresConnection) throws {
        try conn.query("UPDATE platform_versions SET version = version + 1 WHERE name = 'routes'")
        try conn.query("SELECT pg_notify($1, '')", [RouteTableFeed.channel])
    }

    /// Replaces everything `agent` reported with `reports`, except the reports of the
    /// instances in `keeping` (whose new report was refused), which stay as they were.
    static func replace(_ conn: PostgresConnection, agent: String, with reports: [InstanceReport], keeping: [String] = []) throws {
        let guids = reports.map(\.instanceGUID)
        try conn.query("DELETE FROM instance_reports WHERE agent_id = $1 AND NOT (instance_guid = ANY($2::uuid[]))",
                       [agent, guids + keeping])
        guard !reports.isEmpty else { return }
        try conn.query(
            """
            INSERT INTO instance_reports(instance_guid, agent_id, process_guid, app_guid, index, state, host_port,
              container_address, container_port, since, uptime, cpu, mem, disk, mem_quota, disk_quota, crash_count, details)
            SELECT u.guid, $1, u.process, u.app, u.index, u.state, u.host_port, u.address, u.port, u.since, u.uptime,
              u.cpu, u.mem, u.disk, u.mem_quota, u.disk_quota, u.crash_count, u.details
            FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::int[], $6::text[], $7::int[], $8::text[], $9::int[],
                        $10::float8[], $11::float8[], $12::float8[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[],
                        $17::int[], $18::text[])
              AS u(guid, process, app, index, state, host_port, address, port, since, uptime, cpu, mem, disk, mem_quota,
                   disk_quota, crash_count, details)
            ON CONFLICT (instance_guid) DO UPDATE SET agent_id = EXCLUDED.agent_id, process_guid = EXCLUDED.process_guid,
              app_guid = EXCLUDED.app_guid, index = EXCLUDED.index, state = EXCLUDED.state, host_port = EXCLUDED.host_port,
              container_address = EXCLUDED.container_address, container_port = EXCLUDED.container_port,
              since = EXCLUDED.since, uptime = EXCLUDED.uptime, cpu = EXCLUDED.cpu, mem = EXCLUDED.mem, disk = EXCLUDED.disk,
              mem_quota = EXCLUDED.mem_quota, disk_quota = EXCLUDED.disk_quota, crash_count = EXCLUDED.crash_count,
              details = EXCLUDED.details, updated_at = now()
            """,
            [agent, guids, reports.map(\.processGUID), reports.map(\.appGUID), reports.map(\.index),
             reports.map(\.state.rawValue), reports.map(\.hostPort), reports.map(\.containerAddress),
             reports.map(\.containerPort), reports.map(\.since), reports.map(\.uptimeSeconds), reports.map(\.usage.cpu),
             reports.map(\.usage.memoryBytes), reports.map(\.usage.diskBytes), reports.map(\.memoryQuotaBytes),
             reports.map(\.diskQuotaBytes), reports.map(\.crashCount), reports.map(\.details)])
    }

    /// Records what one event says about its instance; inserts a minimal report when the
    /// instance was not reported yet (its address arrives with the next heartbeat).
    static func apply(_ conn: PostgresConnection, agent: String, event: InstanceEvent) throws {
        switch event.type {
        case .stopped:
            try conn.query("DELETE FROM instance_reports WHERE instance_guid = $1", [event.instanceGUID])
        case .running, .crashed, .failed:
            let running = event.type == .running
            try conn.query(
                """
                INSERT INTO instance_reports(instance_guid, agent_id, process_guid, app_guid, index, state, container_port, since,
                  crash_count, details)
                VALUES ($1, $2, $3, $4, $5, $6, 8080, $7, $8, $9)
                ON CONFLICT (instance_guid) DO UPDATE SET agent_id = EXCLUDED.agent_id, state = EXCLUDED.state,
                  since = EXCLUDED.since, crash_count = EXCLUDED.crash_count, details = EXCLUDED.details,
                  uptime = CASE WHEN EXCLUDED.state = 'RUNNING' THEN instance_reports.uptime ELSE 0 END, updated_at = now()
                """,
                [event.instanceGUID, agent, event.processGUID, event.appGUID, event.index,
                 running ? InstanceState.running.rawValue : InstanceState.crashed.rawValue, event.timestamp,
                 event.crashCount, running ? nil : event.reason])
        }
    }
}
