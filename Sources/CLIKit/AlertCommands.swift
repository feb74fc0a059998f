import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

/// How the alert commands show an alert.
enum AlertRows {
    static let headers = ["id", "name", "severity", "state", "app", "since", "summary"]

    static func row(_ a: AlertResource) -> [String] {
        ["\(a.id)", a.name, a.severity, a.state, subject(a), a.startsAt, oneLine(a.annotations["summary"] ?? "")]
    }

    /// What the alert is about: the app's name, the agent for `AgentLost`, the router for
    /// `RouterTableStale`, else the app guid.
    static func subject(_ a: AlertResource) -> String {
        if let name = a.labels["app_name"], !name.isEmpty { return name }
        if a.name == "AgentLost", let agent = a.labels["agent_id"] { return agent }
        return a.appGuid ?? a.labels["agent_id"] ?? a.labels["router_id"] ?? ""
    }

    /// A table cell keeps to one line.
    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// `cf-like-admin alert ID`: the alert, then every label and every annotation; multi-line
    /// values (such as `last_log_lines`) as an indented block under their key.
    static func details(_ a: AlertResource) -> String {
        var head: [(String, String)] = [
            ("id:", "\(a.id)"), ("name:", a.name), ("state:", a.state), ("severity:", a.severity),
        ]
        let subject = subject(a)
        if !subject.isEmpty {
            let kind = a.labels["app_name"] != nil || a.appGuid != nil ? "app:"
                : a.labels["agent_id"] != nil ? "dea:" : a.labels["router_id"] != nil ? "router:" : "app:"
            head.append((kind,
                         a.appGuid.map { $0 == subject ? subject : "\(subject) (\($0))" } ?? subject))
        }
        head.append(("starts:", a.startsAt))
        if let endsAt = a.endsAt { head.append(("ends:", endsAt)) }
        head.append(("fingerprint:", a.fingerprint))
        var out = keyValues(head, indent: "")
        out += "\nlabels:\n" + keyValues(a.labels.sorted { $0.key < $1.key }.map { ("\($0.key):", $0.value) }, indent: "  ")
        out += "\nannotations:\n" + keyValues(a.annotations.sorted { $0.key < $1.key }.map { ("\($0.key):", $0.value) }, indent: "  ")
        return out
    }

    /// `key:   value` lines with the values aligned; a multi-line value goes below its key,
    /// indented two more spaces. Keys and values are made safe for the terminal first
    /// (``Output/safe(_:multiLine:)``): they carry app and buildpack text.
    static func keyValues(_ pairs: [(String, String)], indent: String) -> String {
        if pairs.isEmpty { return indent + "(none)\n" }
        let pairs = pairs.map { (Output.safe($0.0), Output.safe($0.1, multiLine: true)) }
        let width = pairs.filter { !$0.1.contains(where: \.isNewline) }.map(\.0.count).max() ?? 0
        var out = ""
        for (key, value) in pairs {
            let lines = value.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            if lines.count > 1 {
                out += indent + key + "\n"
                var body = lines
                while body.last?.isEmpty == true { body.removeLast() }
                for line in body { out += line.isEmpty ? "\n" : "\(indent)    \(line)\n" }
            } else if value.isEmpty {
                out += indent + key + "\n"
            } else {
                out += indent + key.padding(toLength: width, withPad: " ", startingAt: 0) + "   " + value + "\n"
            }
        }
        return out
    }
}

/// The `alerts` query: active alerts, or every alert with `--all`; newest first.
enum AlertQuery {
    static func path(all: Bool, appGuid: String?) -> String {
        var path = "/v3/admin/alerts?states=\(all ? "active,resolved" : "active")&order_by=-id"
        if let appGuid { path += "&app_guids=\(PlatformClient.query(appGuid))" }
        return path
    }
}

extension Session {
    /// The app of that name for admin commands: in the targeted space when one is targeted,
    /// else in any space the user sees; fails naming the spaces when several apps share the name.
    func adminApp(named name: String) async throws -> AppResource {
        if config.spaceGuid != nil { return try await requireApp(name) }
        let apps = try await all("/v3/apps?names=\(PlatformClient.query(name))", as: AppResource.self)
        if apps.count == 1 { return apps[0] }
        if apps.isEmpty { throw CLIError.operation("App '\(name)' not found in any space") }
        let spaceGuids = Set(apps.compactMap { $0.relationships["space"]?.data?.guid }).sorted()
        let spaces = try await all("/v3/spaces?guids=\(spaceGuids.joined(separator: ","))", as: SpaceResource.self)
        let orgGuids = Set(spaces.compactMap { $0.relationships["organization"]?.data?.guid }).sorted()
        let orgs = orgGuids.isEmpty ? []
            : try await all("/v3/organizations?guids=\(orgGuids.joined(separator: ","))", as: OrganizationResource.self)
        throw CLIError.usage(AppLookup.ambiguous(name, apps: apps, spaces: spaces, orgs: orgs))
    }
}

/// Messages of the admin app lookup.
enum AppLookup {
    /// Several apps share `name`: say in which spaces (`org/space`) and how to pick one.
    static func ambiguous(_ name: String, apps: [AppResource], spaces: [SpaceResource], orgs: [OrganizationResource]) -> String {
        let orgNames = Dictionary(orgs.map { ($0.guid, $0.name) }, uniquingKeysWith: { a, _ in a })
        let spaceNames = Dictionary(spaces.map { space in
            (space.guid, space.relationships["organization"]?.data.flatMap { orgNames[$0.guid] }.map { "\($0)/\(space.name)" } ?? space.name)
        }, uniquingKeysWith: { a, _ in a })
        let places = apps.map { app in
            app.relationships["space"]?.data.map { spaceNames[$0.guid] ?? $0.guid } ?? "(no space)"
        }.sorted()
        return "\(apps.count) apps are named '\(name)', in spaces \(places.joined(separator: ", ")); "
            + "target one with `cf-like target -o ORG -s SPACE`"
    }
}

/// `cf-like-admin alerts [--all] [--app APP]`.
public struct AlertsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "List the alerts the health manager raised: active ones, or with --all resolved ones too; newest first.",
        discussion: """
            --app looks the app up in the targeted space, or in every space when none is targeted.

            Example:
              cf-like-admin alerts
              cf-like-admin alerts --all --app hello
              cf-like-admin alerts --json
            """)
    @Flag(name: .long, help: "Include resolved alerts.") var all = false
    @Option(name: .long, help: "Only alerts about this app (by name).") var app: String?
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let appGuid: String? = if let app { try await session.adminApp(named: app).guid } else { nil }
            let alerts = try await session.all(AlertQuery.path(all: all, appGuid: appGuid), as: AlertResource.self)
            if output.json { print(try Output.json(alerts)); return }
            Output.printTable(AlertRows.headers, alerts.map(AlertRows.row))
        }
    }
}

/// `cf-like-admin alert ID`.
public struct AlertCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "alert", abstract: "Show one alert: state, times, fingerprint, every label and annotation.",
        discussion: "Example:\n  cf-like-admin alert 12\n  cf-like-admin alert 12 --json")
    @Argument(help: "Alert id, as `cf-like-admin alerts` lists it.") var id: Int
    @OptionGroup var output: JSONOption
    public init() {}

    public func validate() throws {
        if id < 1 { throw ValidationError("the alert id is a positive number, as `cf-like-admin alerts` lists it") }
    }

    public func run() async throws {
        try await reportingErrors {
            let alert = try Self.alert(id, from: try await Session().send("GET", "/v3/admin/alerts/\(id)"))
            if output.json { print(try Output.json(alert)); return }
            print(AlertRows.details(alert), terminator: "")
        }
    }

    static func alert(_ id: Int, from answer: PlatformClient.Answer) throws -> AlertResource {
        try decodeFound(answer, as: AlertResource.self, else: CLIError.operation("Alert \(id) not found; `cf-like-admin alerts --all` lists them"))
    }
}

/// The resource an answer carries, or `missing` when the controller says it has none such (a
/// controller without the endpoint answers CF-NotFound "Unknown request": reported as is).
func decodeFound<T: Decodable>(_ answer: PlatformClient.Answer, as type: T.Type, else missing: @autoclosure () -> CLIError) throws -> T {
    if answer.status == 404, answer.apiError?.title != "CF-NotFound" { throw missing() }
    try PlatformClient.check(answer)
    return try answer.decode(T.self)
}

/// What `drain` and `undrain` print.
enum DrainMessages {
    static func drained(_ a: AgentResource) -> String {
        switch a.placedInstances {
        case 0: return "Draining agent \(a.id): it has no instances; nothing new is placed there."
        case 1: return "Draining agent \(a.id): its 1 instance moves to another agent, replacement first."
        case let n: return "Draining agent \(a.id): its \(n) instances move to other agents, replacements first."
        }
    }

    static func undrained(_ a: AgentResource) -> String {
        "Agent \(a.id) is no longer draining: new instances may be placed there again."
    }

    static func notFound(_ id: String) -> CLIError {
        CLIError.operation("DEA '\(id)' not found; `cf-like-admin deas` lists them")
    }
}

extension Session {
    /// Posts an agent action (`drain`, `undrain`), answering the agent; an unknown agent is an
    /// error naming it (a controller without the action answers CF-NotFound, reported as is).
    func agentAction(_ id: String, _ action: String) async throws -> AgentResource {
        let segment = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? id
        return try decodeFound(try await send("POST", "/v3/admin/agents/\(segment)/actions/\(action)"), as: AgentResource.self,
                         else: DrainMessages.notFound(id))
    }
}

/// `cf-like-admin drain ID`.
public struct DrainCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "drain", abstract: "Drain a DEA: nothing new is placed there and its instances move to other DEAs, replacements first.",
        discussion: "`cf-like-admin undrain ID` puts it back in use.\n\nExample:\n  cf-like-admin drain dea-1")
    @Argument(help: "Agent id, as `cf-like-admin deas` lists it.") var id: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            print(DrainMessages.drained(try await Session().agentAction(id, "drain")))
        }
    }
}

/// `cf-like-admin undrain ID`.
public struct UndrainCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "undrain", abstract: "Stop draining a DEA: new instances may be placed there again.",
        discussion: "Example:\n  cf-like-admin undrain dea-1")
    @Argument(help: "Agent id, as `cf-like-admin deas` lists it.") var id: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            print(DrainMessages.undrained(try await Session().agentAction(id, "undrain")))
        }
    }
}
