import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import PlatformModels
import PostgresStore

/// The internal health API (HealthProtocol.swift is the contract): the health manager takes
/// the lease, long-polls the state it decides from, and hands back decisions and the set of
/// active alerts. Decisions and alerts are applied only while the caller holds the lease,
/// checked inside the applying transaction (fencing), under the placement lock.
struct HealthController {
    let services: Services
    var body: JSONBody { JSONBody(maxBytes: services.config.maxInternalBodyBytes) }

    static let maxWaitSeconds = 60
    static let maxActions = 10_000
    static let maxAlerts = 10_000
    /// Builds failed longer ago than this are not in the snapshot.
    static let stagingFailureWindowSeconds = 900
    /// Log lines a crash alert carries.
    static let alertLogLines = 20

    func register(_ group: RouterGroup<ControllerContext>) {
        group.post("v1/health/lease", use: lease)
        group.delete("v1/health/lease", use: release)
        group.get("v1/health/state", use: state)
        group.post("v1/health/actions", use: actions)
        group.put("v1/health/alerts", use: alerts)
    }

    /// Bumps the health version and wakes the health manager, in the caller's transaction.
    static func bump(_ conn: PostgresConnection) throws {
        try conn.query("SELECT cflike_bump_health()")
    }

    // MARK: Lease

    @Sendable func lease(_ request: Request, context: ControllerContext) async throws -> Response {
        let ask = try await body.decode(HealthLeaseRequest.self, from: request, allowedKeys: ["holder", "duration_seconds", "version"])
        guard AgentsController.isAgentID(ask.holder) else {
            throw APIError.unprocessable("holder '\(ask.holder.prefix(64))' is invalid: use 1 to 63 lower-case letters, digits, '.' and '-'")
        }
        guard ask.durationSeconds.isFinite, (1...300).contains(ask.durationSeconds) else {
            throw APIError.unprocessable("duration_seconds must be within 1...300")
        }
        try AgentsController.checkText(ask.version, field: "version", max: 100, allowEmpty: true)
        let granted = try await services.db.write { conn -> HealthLease? in
            try conn.query(
                """
                INSERT INTO health_managers(id, version, last_seen_at) VALUES ($1, $2, now())
                ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, last_seen_at = now()
                """, [ask.holder, ask.version])
            // Forget standbys nobody heard from for a day.
            try conn.query("DELETE FROM health_managers WHERE last_seen_at < now() - interval '1 day'")
            return try conn.query(
                """
                INSERT INTO component_leases AS l (name, holder, expires_at)
                VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
                ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                WHERE l.expires_at < clock_timestamp() OR l.holder = EXCLUDED.holder
                RETURNING l.holder, extract(epoch FROM l.expires_at)::float8 AS expires
                """, [HealthProtocol.leaseName, ask.holder, ask.durationSeconds]).first.map {
                HealthLease(holder: try $0.decode("holder"), expiresAt: try $0.decode("expires"))
            }
        }
        if let granted { return try JSONResponse.make(granted) }
        let holder = try await services.db.read { conn in
            try conn.query("SELECT holder FROM component_leases WHERE name = $1", [HealthProtocol.leaseName]).first?
                .decode("holder", as: String.self)
        }
        throw Self.notHolder(holder ?? "another health manager")
    }

    static func notHolder(_ holder: String) -> APIError {
        APIError(status: .conflict, code: 10016, title: "CF-HealthLeaseHeld",
                 detail: "The health manager lease is held by \(holder); stand by")
    }

    @Sendable func release(_ request: Request, context: ControllerContext) async throws -> Response {
        let query = try QueryParameters(rawQuery: request.uri.query)
        try query.requireOnly(["holder"])
        guard let holder = query["holder"], AgentsController.isAgentID(holder) else {
            throw APIError.badQuery("holder must name the health manager")
        }
        try await services.db.write { conn in
            try conn.query("DELETE FROM component_leases WHERE name = $1 AND holder = $2", [HealthProtocol.leaseName, holder])
            try Self.bump(conn)  // a standby parked on the state long-poll takes over at once
        }
        return JSONResponse.noContent()
    }

    /// Throws 409 unless `holder` holds an unexpired lease; locks the lease row until commit,
    /// so the lease cannot change hands while this transaction applies its decisions.
    static func requireLease(_ conn: PostgresConnection, holder: String) throws {
        let row = try conn.query(
            "SELECT holder, expires_at >= clock_timestamp() AS valid FROM component_leases WHERE name = $1 FOR UPDATE",
            [HealthProtocol.leaseName]).first
        guard let row, try row.decode("holder", as: String.self) == holder, try row.decode("valid", as: Bool.self) else {
            throw notHolder((try? row?.decode("holder", as: String.self)) ?? "nobody (it lapsed)")
        }
    }

    // MARK: State

    @Sendable func state(_ request: Request, context: ControllerContext) async throws -> Response {
        let query = try QueryParameters(rawQuery: request.uri.query)
        try query.requireOnly(["after", "wait"])
        let after = try query.int("after", range: 0...Int.max)
        let wait = try query.int("wait", range: 0...Self.maxWaitSeconds) ?? 30
        let subscription = try await services.feed.subscribe(channel: HealthProtocol.channel)
        var snapshot = try await services.db.read { conn in try Self.snapshot(conn) }
        if wait > 0, let after, snapshot.version <= after {
            if await subscription.wait(timeout: .seconds(wait)) != .timedOut {
                snapshot = try await services.db.read { conn in try Self.snapshot(conn) }
            }
        }
        return try JSONResponse.make(snapshot)
    }

    static func snapshot(_ conn: PostgresConnection) throws -> HealthSnapshot {
        let head = try conn.query(
            "SELECT last_value + (CASE WHEN is_called THEN 0 ELSE -1 END) AS version, extract(epoch FROM clock_timestamp())::float8 AS now FROM health_version"
        ).rows[0]
        let processes = try conn.query(
            """
            SELECT p.guid, p.app_guid, a.name AS app_name, a.space_guid, p.type, p.instances, p.memory_in_mb, p.disk_in_mb, a.stack,
              CASE WHEN a.state = 'STARTED' AND d.state = 'STAGED' AND d.blob_sha256 IS NOT NULL THEN 'STARTED' ELSE 'STOPPED' END AS state,
              extract(epoch FROM greatest(a.updated_at, p.updated_at))::float8 AS updated
            FROM processes p JOIN apps a ON a.guid = p.app_guid LEFT JOIN droplets d ON d.guid = a.droplet_guid
            WHERE a.state = 'STARTED' OR EXISTS (SELECT 1 FROM instances i WHERE i.process_guid = p.guid)
            ORDER BY p.guid
            """).map { row in
            HealthProcess(
                guid: try row.decode("guid"), appGuid: try row.decode("app_guid"), appName: try row.decode("app_name"),
                spaceGuid: try row.decode("space_guid"), type: try row.decode("type"), state: try row.decode("state"),
                instances: try row.decode("instances"), memoryMB: try row.decode("memory_in_mb"), diskMB: try row.decode("disk_in_mb"),
                stack: try row.decode("stack", as: String?.self), updatedAt: try row.decode("updated"))
        }
        // Instances of an older generation (process version or droplet) belong to no desired
        // process: they are named `<process>/old`, so they are stopped as not desired.
        let instances = try conn.query(
            """
            SELECT i.guid, i.process_guid, i.app_guid, i.index, i.agent_id, i.crash_count, i.last_crash_at, i.memory_mb, i.disk_mb,
              i.exit_description, i.placement_error, extract(epoch FROM i.created_at)::float8 AS created, r.state, r.since,
              (i.process_version = p.version AND i.droplet_guid IS NOT DISTINCT FROM a.droplet_guid) AS current
            FROM instances i JOIN processes p ON p.guid = i.process_guid JOIN apps a ON a.guid = i.app_guid
              LEFT JOIN instance_reports r ON r.instance_guid = i.guid AND r.agent_id = i.agent_id
            ORDER BY i.process_guid, i.index, i.guid
            """).map { row in
            let process = try row.decode("process_guid", as: String.self)
            let reported = try row.decode("state", as: String?.self).flatMap(InstanceState.init(rawValue:))
            return HealthInstance(
                guid: try row.decode("guid"), processGuid: try row.decode("current", as: Bool.self) ? process : process + "/old",
                appGuid: try row.decode("app_guid"), index: try row.decode("index"), agentID: try row.decode("agent_id", as: String?.self),
                state: reported ?? .starting, crashCount: try row.decode("crash_count"),
                lastCrash: try row.decode("last_crash_at", as: Double?.self),
                since: reported == nil ? try row.decode("created") : try row.decode("since"),
                memoryMB: try row.decode("memory_mb"), diskMB: try row.decode("disk_mb"),
                exitDescription: try row.decode("exit_description", as: String?.self),
                placementError: try row.decode("placement_error", as: String?.self))
        }
        let agents = try conn.query(
            """
            SELECT id, stacks, draining, capacity_memory_mb, capacity_disk_mb, capacity_instances, available_memory_mb,
              available_disk_mb, available_instances, state, extract(epoch FROM last_heartbeat_at)::float8 AS heartbeat
            FROM agents ORDER BY id
            """).map { row in
            // A lost agent counts as silent since it was lost, whatever its last heartbeat said.
            HealthAgent(
                id: try row.decode("id"),
                capacity: AgentCapacity(memoryMB: try row.decode("capacity_memory_mb"), diskMB: try row.decode("capacity_disk_mb"),
                                        instances: try row.decode("capacity_instances")),
                available: AgentCapacity(memoryMB: try row.decode("available_memory_mb"), diskMB: try row.decode("available_disk_mb"),
                                         instances: try row.decode("available_instances")),
                stacks: try row.decode("stacks"), lastHeartbeat: try row.decode("heartbeat"), draining: try row.decode("draining"))
        }
        let failures = try conn.query(
            """
            SELECT * FROM (
              SELECT DISTINCT ON (b.app_guid) b.guid, b.app_guid, a.name, b.state, coalesce(b.error, '') AS error,
                extract(epoch FROM b.updated_at)::float8 AS failed
              FROM builds b JOIN apps a ON a.guid = b.app_guid ORDER BY b.app_guid, b.created_at DESC, b.id DESC) latest
            WHERE state = 'FAILED' AND failed > extract(epoch FROM now())::float8 - $1
            """, [stagingFailureWindowSeconds]).map { row in
            HealthStagingFailure(buildGuid: try row.decode("guid"), appGuid: try row.decode("app_guid"), appName: try row.decode("name"),
                                 error: try row.decode("error"), failedAt: try row.decode("failed"))
        }
        // A router parked in a long-poll counts as seen until the poll's wait ends.
        let routers = try conn.query(
            """
            SELECT id, table_version, table_age_seconds,
              extract(epoch FROM greatest(last_seen_at, least(coalesce(poll_deadline, last_seen_at), clock_timestamp())))::float8 AS seen
            FROM routers ORDER BY id
            """).map { row in
            HealthRouter(id: try row.decode("id"), lastSeen: try row.decode("seen"),
                         tableVersion: try row.decode("table_version", as: Int?.self),
                         tableAgeSeconds: try row.decode("table_age_seconds", as: Int?.self))
        }
        return HealthSnapshot(version: try head.decode("version"), asOf: try head.decode("now"), processes: processes,
                              instances: instances, agents: agents, stagingFailures: failures, routers: routers)
    }

    // MARK: Actions

    /// `POST /internal/v1/health/actions`, read action by action (BatchProtocol.swift).
    struct ActionsBody: Decodable {
        var holder: String
        var actions: [BatchItem<HealthAction>]
    }

    @Sendable func actions(_ request: Request, context: ControllerContext) async throws -> Response {
        let batch = try await body.decode(ActionsBody.self, from: request, allowedKeys: ["holder", "actions"], repairingText: true)
        guard batch.actions.count <= Self.maxActions else { throw APIError.unprocessable("actions holds at most \(Self.maxActions) actions") }
        let sorted = try BatchSort(batch.actions) { try Self.validate($0, at: $1) }
        let cfAPI = services.config.externalURL
        let keep = services.config.appLogLines
        let actions = sorted.items
        let holder = batch.holder
        let answer = try await services.db.write { conn -> HealthActionsAnswer in
            try Placement.lock(conn)
            try Self.requireLease(conn, holder: holder)
            var applied = 0
            var skipped: [String] = []
            for action in actions {
                if let why = try HealthActionApplier.apply(conn, action, cfAPI: cfAPI, keepLogLines: keep) {
                    skipped.append("\(action.kind.rawValue) \(action.process)/\(action.index): \(why)")
                } else {
                    applied += 1
                }
            }
            return HealthActionsAnswer(applied: applied, skipped: skipped)
        }
        sorted.log(services.logger, batch: "health actions", metadata: ["holder": .string(batch.holder)])
        if answer.applied > 0 || !answer.skipped.isEmpty {
            services.logger.info("health actions applied", metadata: [
                "applied": "\(answer.applied)", "skipped": "\(answer.skipped.count)", "rejected": "\(sorted.rejected.count)",
                "holder": .string(batch.holder)])
        }
        return try JSONResponse.make(HealthActionsAnswer(applied: answer.applied, skipped: answer.skipped, rejected: sorted.rejected))
    }

    /// An action ready to apply (its reason cleaned, never a reason to refuse it), or a 422
    /// naming the field that refuses it alone.
    static func validate(_ action: HealthAction, at i: Int) throws -> HealthAction {
        var action = action
        let field = "actions[\(i)]"
        guard UUID(uuidString: String(action.process.prefix(36))) != nil, action.process.count == 36 || action.process.hasSuffix("/old")
        else { throw APIError.unprocessable("\(field).process must be a process guid") }
        guard (0...100_000).contains(action.index) else { throw APIError.unprocessable("\(field).index must be within 0...100000") }
        if let instance = action.instance { _ = try AgentsController.checkGuid(instance, field: "\(field).instance") }
        if let agent = action.agent, !AgentsController.isAgentID(agent) { throw APIError.unprocessable("\(field).agent is not an agent id") }
        action.reason = action.reason.map { UntrustedText.clean($0, as: .reason) }
        for (j, guid) in (action.replaces ?? []).enumerated() { _ = try AgentsController.checkGuid(guid, field: "\(field).replaces[\(j)]") }
        switch action.kind {
        case .place:
            guard action.agent != nil else { throw APIError.unprocessable("\(field).agent is required to place") }
        case .restart, .resetCrashCount, .stop:
            guard action.instance != nil else { throw APIError.unprocessable("\(field).instance is required to \(action.kind.rawValue)") }
        case .unplaced:
            break
        }
        return action
    }

    // MARK: Alerts

    /// `PUT /internal/v1/health/alerts`, read alert by alert (BatchProtocol.swift).
    struct AlertSetBody: Decodable {
        var holder: String
        var alerts: [BatchItem<AlertDraft>]
    }

    @Sendable func alerts(_ request: Request, context: ControllerContext) async throws -> Response {
        let set = try await body.decode(AlertSetBody.self, from: request, allowedKeys: ["holder", "alerts"], repairingText: true)
        guard set.alerts.count <= Self.maxAlerts else { throw APIError.unprocessable("alerts holds at most \(Self.maxAlerts) alerts") }
        let sorted = try BatchSort(set.alerts) { try Self.validate($0, at: $1) }
        // Refusing an alert's update must not resolve the alert: it stays as it was stored.
        let refused = Set(sorted.rejected.map(\.index))
        let unchanged = Set(set.alerts.indices.filter(refused.contains).compactMap { i in
            (try? set.alerts[i].decoded.get()).map { AlertStore.fingerprint($0.sanitized().labels) }
        })
        let drafts = sorted.items
        let holder = set.holder
        let answer = try await services.db.write { conn -> HealthAlertsAnswer in
            try Self.requireLease(conn, holder: holder)
            return try AlertStore.replaceActive(conn, with: drafts, keeping: unchanged, logLines: Self.alertLogLines)
        }
        sorted.log(services.logger, batch: "alerts", metadata: ["holder": .string(set.holder)])
        for alert in answer.resolved {
            services.logger.info("alert resolved", metadata: ["alert.id": "\(alert.id)", "alert.name": .string(alert.name)])
        }
        return try JSONResponse.make(HealthAlertsAnswer(active: answer.active, resolved: answer.resolved, rejected: sorted.rejected))
    }

    /// An alert ready to store: its values cleaned (app and buildpack text is never a reason to
    /// refuse it), then its shape checked; a 422 refuses this alert alone.
    static func validate(_ draft: AlertDraft, at i: Int) throws -> AlertDraft {
        let field = "alerts[\(i)]"
        guard draft.labels.count <= 20, draft.annotations.count <= 20 else {
            throw APIError.unprocessable("\(field) has too many labels or annotations (20 each at most)")
        }
        for key in draft.labels.keys.sorted() + draft.annotations.keys.sorted() {
            try AgentsController.checkText(key, field: "\(field) key", max: 100)
        }
        let clean = draft.sanitized()
        guard !clean.name.isEmpty else { throw APIError.unprocessable("\(field).labels.alertname is required") }
        return clean
    }
}
