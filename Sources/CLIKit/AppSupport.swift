import Foundation
import PlatformClient
import PlatformModels

/// API steps the app commands share (the public calls any CF client makes).
extension Session {
    /// The app of that name in the targeted space, or nil.
    func app(named name: String) async throws -> AppResource? {
        let space = try targetSpace()
        let list = try await call("GET", "/v3/apps?space_guids=\(space.guid)&names=\(PlatformClient.query(name))",
                                  as: ListResponse<AppResource>.self)
        return list.resources.first
    }

    /// The app of that name in the targeted space, or an error saying it is not there.
    func requireApp(_ name: String) async throws -> AppResource {
        guard let app = try await app(named: name) else {
            throw CLIError.operation("App '\(name)' not found in space \(try targetSpace().name)")
        }
        return app
    }

    func webProcess(_ app: AppResource) async throws -> ProcessResource {
        try await call("GET", "/v3/apps/\(app.guid)/processes/web", as: ProcessResource.self)
    }

    func stats(_ process: ProcessResource) async throws -> [ProcessInstanceStats] {
        try await call("GET", "/v3/processes/\(process.guid)/stats", as: ProcessStatsList.self).resources
    }

    /// The stats with each instance's crash history.
    func instanceStats(_ process: ProcessResource) async throws -> [InstanceStats] {
        try await call("GET", "/v3/processes/\(process.guid)/stats", as: InstanceStatsList.self).resources
    }

    func routes(of app: AppResource) async throws -> [RouteResource] {
        try await all("/v3/apps/\(app.guid)/routes", as: RouteResource.self)
    }

    /// The current droplet, or nil when the app has none yet.
    func currentDroplet(_ app: AppResource) async throws -> DropletResource? {
        let answer = try await send("GET", "/v3/apps/\(app.guid)/droplets/current")
        if answer.status == 404 { return nil }
        try PlatformClient.check(answer)
        return try answer.decode(DropletResource.self)
    }

    /// Newest log lines (oldest first) and the cursor after them.
    func recentLogs(_ app: AppResource, after: Int64? = nil, lines: Int? = nil) async throws -> AppLogPage {
        var path = "/v3/apps/\(app.guid)/logs?recent"
        if let after { path += "&after=\(after)" }
        if let lines { path += "&lines=\(lines)" }
        return try await call("GET", path, as: AppLogPage.self)
    }

    /// Posts an app action (`start`, `stop`, `restart`).
    @discardableResult
    func action(_ app: AppResource, _ name: String) async throws -> AppResource {
        try await call("POST", "/v3/apps/\(app.guid)/actions/\(name)", as: AppResource.self)
    }

    /// Polls the web process's stats until every instance runs, printing each index's state as it
    /// changes; fails with the instance's own words and the last app log lines when one crashes
    /// or the instances do not all run within `timeout` seconds.
    func waitForInstances(_ app: AppResource, timeout: Int, quiet: Bool = false) async throws {
        let process = try await webProcess(app)
        guard process.instances > 0 else { return }
        var seen: [Int: String] = [:]
        let deadline = Date().addingTimeInterval(TimeInterval(timeout))
        while true {
            let stats = try await self.stats(process)
            for s in stats where seen[s.index] != s.state {
                seen[s.index] = s.state
                if !quiet { print(Output.safe("   instance \(s.index): \(s.state.lowercased())\(s.details.map { " (\($0))" } ?? "")")) }
            }
            if let crashed = stats.first(where: { $0.state == "CRASHED" }) {
                throw CLIError.operation(try await startFailure(app, "instance \(crashed.index) crashed", details: crashed.details))
            }
            if !stats.isEmpty, stats.allSatisfy({ $0.state == "RUNNING" }) { return }
            if Date() > deadline {
                let waiting = stats.filter { $0.state != "RUNNING" }.map { "\($0.index) (\($0.state.lowercased()))" }
                throw CLIError.operation(try await startFailure(
                    app, "instances \(waiting.joined(separator: ", ")) did not run within \(timeout) s",
                    details: stats.compactMap(\.details).first))
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// A start failure's message: what happened, the crash reason the platform recorded and the
    /// last lines the app printed.
    func startFailure(_ app: AppResource, _ what: String, details: String?) async throws -> String {
        var message = "Start of \(app.name) failed: \(what)"
        if let details, !details.isEmpty { message += ": \(details)" }
        let events = try? await all("/v3/audit_events?target_guids=\(app.guid)&types=audit.app.process.crash&order_by=-created_at&per_page=1",
                                    as: AuditEventResource.self)
        if let crash = events?.first, case .object(let data) = crash.data {
            let reason = [data["reason"], data["exit_description"]].compactMap { value -> String? in
                if case .string(let s)? = value { return s }
                return nil
            }
            let text = reason.joined(separator: ": ")
            if !reason.isEmpty, text != details { message += "\ncrash: \(text)" }
        }
        let lines = (try? await recentLogs(app, lines: 200).lines) ?? []
        let appLines = lines.filter { $0.sourceType.hasPrefix("APP") }.suffix(10)
        if !appLines.isEmpty {
            message += "\nlast app log lines:\n" + appLines.map { "  \($0.message)" }.joined(separator: "\n")
        }
        return message + "\nhint: `cf-like logs \(app.name) --recent` shows more"
    }

    /// The first shared domain (CF's default domain).
    func defaultDomain() async throws -> DomainResource {
        let domains = try await all("/v3/domains", as: DomainResource.self)
        guard let shared = domains.first(where: { $0.relationships["organization"]?.data == nil }) ?? domains.first else {
            throw CLIError.operation("the platform has no domain to route to; push with --no-route")
        }
        return shared
    }
}

/// An instance's crash history as process stats carry it (`crash_count`, `last_crash_at`);
/// zero and nil when the controller does not report it.
public struct CrashHistory: Codable, Sendable, Equatable {
    public var count: Int
    public var lastAt: String?
    enum CodingKeys: String, CodingKey { case count = "crash_count", lastAt = "last_crash_at" }
    public init(count: Int = 0, lastAt: String? = nil) { self.count = count; self.lastAt = lastAt }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decodeIfPresent(Int.self, forKey: .count) ?? 0
        lastAt = try c.decodeIfPresent(String.self, forKey: .lastAt)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(lastAt, forKey: .lastAt)
    }
}

/// One entry of `GET /v3/processes/:guid/stats` with its crash history, encoded as one object
/// (the stats' fields plus `crash_count` and `last_crash_at`).
public struct InstanceStats: Codable, Sendable, Equatable {
    public var stats: ProcessInstanceStats
    public var crashes: CrashHistory
    public init(stats: ProcessInstanceStats, crashes: CrashHistory = CrashHistory()) { self.stats = stats; self.crashes = crashes }
    public init(from decoder: any Decoder) throws {
        stats = try ProcessInstanceStats(from: decoder)
        crashes = try CrashHistory(from: decoder)
    }
    public func encode(to encoder: any Encoder) throws {
        try stats.encode(to: encoder)
        try crashes.encode(to: encoder)
    }
}

/// `GET /v3/processes/:guid/stats` with crash histories.
struct InstanceStatsList: Codable, Sendable {
    var resources: [InstanceStats]
}

/// The app summary `push`, `app`, `start` and `restart` end with, as cf prints it.
public enum AppSummary {
    /// The instance table's rows: index, state, since, cpu, memory, disk, details; with a
    /// crashes column before details when any instance has crashed.
    public static func instanceRows(_ stats: [ProcessInstanceStats], crashes: [Int: CrashHistory] = [:], now: Date = Date()) -> [[String]] {
        let showCrashes = crashes.values.contains { $0.count > 0 }
        return stats.map { s in
            let since = s.state == "RUNNING" ? since(now.addingTimeInterval(-TimeInterval(s.uptime))) : ""
            var row = ["#\(s.index)", s.state.lowercased(), since, String(format: "%.1f%%", s.usage.cpu * 100),
                       "\(size(s.usage.mem)) of \(size(s.memQuota))", "\(size(s.usage.disk)) of \(size(s.diskQuota))"]
            if showCrashes { row.append(crashes[s.index].map { crashed($0, now: now) } ?? "") }
            return row + [s.details ?? ""]
        }
    }

    /// `4, last 12:01:02Z` (the time alone when it was today, UTC), or empty for none.
    static func crashed(_ c: CrashHistory, now: Date) -> String {
        guard c.count > 0 else { return "" }
        guard let lastAt = c.lastAt, !lastAt.isEmpty else { return "\(c.count)" }
        guard let date = parseTimestamp(lastAt) else { return "\(c.count), last \(lastAt)" }
        let stamp = since(date), today = since(now)
        return "\(c.count), last " + (stamp.prefix(11) == today.prefix(11) ? String(stamp.dropFirst(11)) : stamp)
    }

    /// An ISO 8601 timestamp, with or without fractional seconds.
    static func parseTimestamp(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        if let date = f.date(from: s) { return date }
        f.formatOptions.insert(.withFractionalSeconds)
        return f.date(from: s)
    }

    static func since(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        return f.string(from: date)
    }

    /// Bytes as cf shows them: `0`, `512K`, `12.5M`, `1G`.
    public static func size(_ bytes: Int64) -> String {
        if bytes <= 0 { return "0" }
        let units: [(String, Double)] = [("G", 1_073_741_824), ("M", 1_048_576), ("K", 1024)]
        for (unit, factor) in units where Double(bytes) >= factor {
            let v = Double(bytes) / factor
            return v == v.rounded() || v >= 100 ? "\(Int(v.rounded()))\(unit)" : String(format: "%.1f%@", v, unit)
        }
        return "\(bytes)B"
    }

    /// The whole summary.
    public static func render(app: AppResource, process: ProcessResource?, stats: [ProcessInstanceStats], crashes: [Int: CrashHistory] = [:],
                              routes: [RouteResource], droplet: DropletResource?, now: Date = Date()) -> String {
        let running = stats.filter { $0.state == "RUNNING" }.count
        var header: [[String]] = [
            ["name:", app.name],
            ["requested state:", app.state.lowercased()],
            ["routes:", routes.map { route in route.url }.joined(separator: ", ")],
            ["last uploaded:", droplet?.createdAt ?? ""],
            ["stack:", droplet?.stack ?? app.lifecycle.data.stack ?? ""],
            ["buildpacks:", (droplet?.buildpacks ?? []).map { b in
                [b.buildpackName ?? b.name, b.version].compactMap { $0 }.joined(separator: " ") }.joined(separator: ", ")],
        ]
        if let process {
            header += [
                ["", ""],
                ["type:", process.type],
                ["instances:", "\(running)/\(process.instances)"],
                ["memory usage:", "\(process.memoryInMB)M"],
            ]
        }
        var out = Output.table(["", ""], header).split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
            .map { $0.trimmingCharacters(in: .whitespaces) == "" ? "" : String($0) }.joined(separator: "\n")
        if !stats.isEmpty {
            let headers = ["", "state", "since", "cpu", "memory", "disk"] + (crashes.values.contains { $0.count > 0 } ? ["crashes"] : [])
            out += "\n" + Output.table(headers + ["details"], instanceRows(stats, crashes: crashes, now: now))
        }
        return out
    }
}
