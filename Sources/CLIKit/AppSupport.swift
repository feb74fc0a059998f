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
                if !quiet { print("   instance \(s.index): \(s.state.lowercased())\(s.details.map { " (\($0))" } ?? "")") }
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

/// The app summary `push`, `app`, `start` and `restart` end with, as cf prints it.
public enum AppSummary {
    /// The instance table's rows: index, state, since, cpu, memory, disk, details.
    public static func instanceRows(_ stats: [ProcessInstanceStats], now: Date = Date()) -> [[String]] {
        stats.map { s in
            let since = s.state == "RUNNING" ? since(now.addingTimeInterval(-TimeInterval(s.uptime))) : ""
            return ["#\(s.index)", s.state.lowercased(), since, String(format: "%.1f%%", s.usage.cpu * 100),
                    "\(size(s.usage.mem)) of \(size(s.memQuota))", "\(size(s.usage.disk)) of \(size(s.diskQuota))", s.details ?? ""]
        }
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
    public static func render(app: AppResource, process: ProcessResource?, stats: [ProcessInstanceStats], routes: [RouteResource],
                              droplet: DropletResource?, now: Date = Date()) -> String {
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
            out += "\n" + Output.table(["", "state", "since", "cpu", "memory", "disk", "details"], instanceRows(stats, now: now))
        }
        return out
    }
}
