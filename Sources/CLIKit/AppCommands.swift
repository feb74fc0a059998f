import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

/// `app APP --json`: everything `app` shows, for scripts.
struct AppDetails: Codable {
    var app: AppResource
    var process: ProcessResource
    var instances: [InstanceStats]
    var routes: [String]
    var droplet: DropletResource?
}

/// `cf-like app APP`.
public struct AppCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "app", abstract: "Show an app: state, routes, droplet and its instances.",
        discussion: "Example:\n  cf-like app hello\n  cf-like app hello --json")
    @Argument(help: "App name.") var name: String
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            if output.json {
                let process = try await session.webProcess(app)
                print(try Output.json(AppDetails(app: app, process: process, instances: try await session.instanceStats(process),
                                                 routes: try await session.routes(of: app).map(\.url),
                                                 droplet: try await session.currentDroplet(app))))
                return
            }
            try await PushCommand.printSummary(session, app)
        }
    }
}

/// `cf-like start APP`.
public struct StartCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "start", abstract: "Start an app and wait for its instances.",
                                                           discussion: "Example:\n  cf-like start hello")
    @Argument(help: "App name.") var name: String
    @Option(name: .short, help: "Seconds to wait for the instances.") var t = 120
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            var app = try await session.requireApp(name)
            if app.state == "STARTED" { print("App \(name) is already started."); return }
            print("Starting app \(name)...")
            app = try await session.action(app, "start")
            try await session.waitForInstances(app, timeout: t)
            print("")
            try await PushCommand.printSummary(session, app)
        }
    }
}

/// `cf-like stop APP`.
public struct StopCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop an app.",
                                                           discussion: "Example:\n  cf-like stop hello")
    @Argument(help: "App name.") var name: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            if app.state == "STOPPED" { print("App \(name) is already stopped."); return }
            try await session.action(app, "stop")
            print("Stopped app \(name).")
        }
    }
}

/// `cf-like restart APP`.
public struct RestartCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "restart", abstract: "Stop and start an app, then wait for its instances.",
                                                           discussion: "Example:\n  cf-like restart hello")
    @Argument(help: "App name.") var name: String
    @Option(name: .short, help: "Seconds to wait for the instances.") var t = 120
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            var app = try await session.requireApp(name)
            print("Restarting app \(name)...")
            app = try await session.action(app, "restart")
            try await session.waitForInstances(app, timeout: t)
            print("")
            try await PushCommand.printSummary(session, app)
        }
    }
}

/// `cf-like restage APP`: a new build of the current droplet's package, then a restart.
public struct RestageCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "restage", abstract: "Stage the app's current package again, then restart it.",
        discussion: "Picks up changed buildpacks and environment.\n\nExample:\n  cf-like restage hello")
    @Argument(help: "App name.") var name: String
    @Option(name: .short, help: "Seconds to wait for the instances.") var t = 120
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            var app = try await session.requireApp(name)
            // The package the current droplet was built from, else the newest READY one.
            var packageGuid: String?
            if let droplet = try await session.currentDroplet(app) {
                let builds = try await session.call("GET", "/v3/apps/\(app.guid)/builds?order_by=-created_at&per_page=100",
                                                    as: ListResponse<BuildResource>.self)
                packageGuid = builds.resources.first { $0.droplet?.guid == droplet.guid }?.package.guid
            }
            if packageGuid == nil {
                let packages = try await session.call("GET", "/v3/apps/\(app.guid)/packages?order_by=-created_at",
                                                      as: ListResponse<PackageResource>.self)
                packageGuid = packages.resources.first { $0.state == "READY" }?.guid
            }
            guard let packageGuid else { throw CLIError.operation("App \(name) has no package to stage; push it first") }
            let package = try await session.call("GET", "/v3/packages/\(packageGuid)", as: PackageResource.self)
            print("Restaging app \(name)...")
            let droplet = try await PushCommand.stage(session, app, package: package, buildpacks: nil)
            _ = try await session.call("PATCH", "/v3/apps/\(app.guid)/relationships/current_droplet",
                                       json: SetCurrentDropletRequest(guid: droplet), as: CurrentDropletRelationship.self)
            if app.state == "STARTED" {
                print("Waiting for app \(name) to start...")
                app = try await session.action(app, "restart")
                try await session.waitForInstances(app, timeout: t)
            }
            print("")
            try await PushCommand.printSummary(session, app)
        }
    }
}

/// `cf-like scale APP [-i N] [-m MEM] [-k DISK]`.
public struct ScaleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "scale", abstract: "Change an app's instances, memory or disk.",
        discussion: "Without options, shows the current scale.\n\nExample:\n  cf-like scale hello -i 3\n  cf-like scale hello -m 512M")
    @Argument(help: "App name.") var name: String
    @Option(name: .short, help: "Number of instances.") var i: Int?
    @Option(name: .short, help: "Memory per instance, e.g. 256M or 1G.") var m: String?
    @Option(name: .short, help: "Disk per instance, e.g. 1G.") var k: String?
    public init() {}

    public func validate() throws {
        if let i, i < 0 { throw ValidationError("-i must be 0 or more") }
        if let m { _ = try AppManifest.megabytes(m, field: "-m") }
        if let k { _ = try AppManifest.megabytes(k, field: "-k") }
    }

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            var process = try await session.webProcess(app)
            if i != nil || m != nil || k != nil {
                process = try await session.call(
                    "POST", "/v3/processes/\(process.guid)/actions/scale",
                    json: ScaleRequest(instances: i, memoryInMB: try m.map { try AppManifest.megabytes($0, field: "-m") },
                                       diskInMB: try k.map { try AppManifest.megabytes($0, field: "-k") }),
                    as: ProcessResource.self)
                print("Scaled app \(name).")
            }
            print("instances: \(process.instances)\nmemory: \(process.memoryInMB)M\ndisk: \(process.diskInMB)M")
        }
    }
}

/// `cf-like delete APP [-r] [-f]`.
public struct DeleteCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete an app (and with -r its routes).",
        discussion: "Asks first on a terminal unless -f.\n\nExample:\n  cf-like delete hello -r -f")
    @Argument(help: "App name.") var name: String
    @Flag(name: .short, help: "Also delete the routes mapped to the app.") var r = false
    @Flag(name: .short, help: "Do not ask.") var f = false
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            if !f {
                guard let answer = Output.readLineIfTerminal("Really delete the app \(name)? [yN]: ") else {
                    throw CLIError.usage("pass -f to delete without a terminal to confirm on")
                }
                guard ["y", "yes"].contains(answer.lowercased()) else { print("Delete cancelled."); return }
            }
            let session = try Session()
            guard let app = try await session.app(named: name) else { print("App \(name) does not exist."); return }
            let routes = r ? try await session.routes(of: app) : []
            try PlatformClient.check(try await session.send("DELETE", "/v3/apps/\(app.guid)"))
            for route in routes {
                // A route another app still uses stays, as with cf.
                if route.destinations.contains(where: { $0.app.guid != app.guid }) { continue }
                try PlatformClient.check(try await session.send("DELETE", "/v3/routes/\(route.guid)"))
                print("Deleted route \(route.url).")
            }
            print("Deleted app \(name).")
        }
    }
}

/// `cf-like logs APP [--recent]`.
public struct LogsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Show an app's logs: recent lines, or follow them live until Ctrl-C.",
        discussion: "Example:\n  cf-like logs hello --recent\n  cf-like logs hello")
    @Argument(help: "App name.") var name: String
    @Flag(help: "Print the recent lines and exit.") var recent = false
    @OptionGroup var output: JSONOption
    public init() {}

    /// One line as cf prints it: time, `[SOURCE/INSTANCE]`, stream, message; source coloured on a
    /// terminal. What the app wrote is made safe (``Output/safe(_:multiLine:)``): the only escape
    /// sequences printed are the CLI's own colours.
    public static func format(_ line: LogLine, colour: Bool) -> String {
        let date = Date(timeIntervalSince1970: TimeInterval(line.timestamp) / 1_000_000_000)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSZ"
        var source = Output.safe("[\(line.sourceType)\(line.sourceInstance.isEmpty ? "" : "/" + line.sourceInstance)]")
        if colour {
            let code = line.sourceType == "STG" ? "33" : line.sourceType.hasPrefix("APP") ? "32" : "36"
            source = "\u{1B}[\(code)m\(source)\u{1B}[0m"
        }
        return "   \(f.string(from: date)) \(source) \(line.messageType.rawValue) \(Output.safe(line.message))"
    }

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            let colour = Output.isTerminal
            let page = try await session.recentLogs(app)
            if output.json && recent { print(try Output.json(page.lines)); return }
            if recent {
                for line in page.lines { print(Self.format(line, colour: colour)) }
                return
            }
            print("Following logs of \(name) (Ctrl-C to stop)...")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try await session.client.followLogs(app: app.guid, after: page.nextCursor, token: session.config.accessToken) { line in
                if output.json { print(String(decoding: (try? encoder.encode(line)) ?? Data(), as: UTF8.self)) }
                else { print(Self.format(line, colour: colour)) }
                fflush(nil)  // every stream: lines show as they arrive even through a pipe
            }
        }
    }
}

/// `cf-like env APP`.
public struct EnvCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "env", abstract: "Show an app's environment variables.",
                                                           discussion: "Example:\n  cf-like env hello --json")
    @Argument(help: "App name.") var name: String
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            let env = try await session.call("GET", "/v3/apps/\(app.guid)/environment_variables", as: EnvironmentVariablesResource.self)
            if output.json { print(try Output.json(env.var)); return }
            print("User-Provided:")
            for key in env.var.keys.sorted() { print("\(key): \(env.var[key]!)") }  // key comes from the dictionary
        }
    }
}

/// `cf-like set-env APP NAME VALUE`.
public struct SetEnvCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "set-env", abstract: "Set an app's environment variable (restage or restart to apply).",
        discussion: "Example:\n  cf-like set-env hello GREETING hi")
    @Argument(help: "App name.") var name: String
    @Argument(help: "Variable name.") var variable: String
    @Argument(help: "Value.") var value: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            _ = try await session.call("PATCH", "/v3/apps/\(app.guid)/environment_variables",
                                       json: EnvironmentVariablesPatch(var: [variable: value]), as: EnvironmentVariablesResource.self)
            print("Set \(variable) for app \(name). Use `cf-like restage \(name)` for the change to take effect.")
        }
    }
}

/// `cf-like unset-env APP NAME`.
public struct UnsetEnvCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "unset-env", abstract: "Remove an app's environment variable.",
                                                           discussion: "Example:\n  cf-like unset-env hello GREETING")
    @Argument(help: "App name.") var name: String
    @Argument(help: "Variable name.") var variable: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            _ = try await session.call("PATCH", "/v3/apps/\(app.guid)/environment_variables",
                                       json: EnvironmentVariablesPatch(var: [variable: nil]), as: EnvironmentVariablesResource.self)
            print("Removed \(variable) from app \(name). Use `cf-like restage \(name)` for the change to take effect.")
        }
    }
}

/// `cf-like events APP`.
public struct EventsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "events", abstract: "List an app's recent audit events.",
                                                           discussion: "Example:\n  cf-like events hello")
    @Argument(help: "App name.") var name: String
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            let events = try await session.call("GET", "/v3/audit_events?target_guids=\(app.guid)&order_by=-created_at&per_page=50",
                                                as: ListResponse<AuditEventResource>.self).resources
            if output.json { print(try Output.json(events)); return }
            Output.printTable(["time", "event", "actor"], events.map { [$0.createdAt, $0.type, $0.actor.name] })
        }
    }
}

/// `cf-like droplets APP`.
public struct DropletsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "droplets", abstract: "List an app's droplets, newest first.",
                                                           discussion: "Example:\n  cf-like droplets hello --json")
    @Argument(help: "App name.") var name: String
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            let droplets = try await session.all("/v3/apps/\(app.guid)/droplets?order_by=-created_at", as: DropletResource.self)
            if output.json { print(try Output.json(droplets)); return }
            let current = try await session.currentDroplet(app)?.guid
            Output.printTable(["guid", "state", "created", "buildpacks", "current"], droplets.map {
                [$0.guid, $0.state.lowercased(), $0.createdAt, $0.buildpacks.map(\.name).joined(separator: ", "), $0.guid == current ? "*" : ""]
            })
        }
    }
}

/// `cf-like buildpacks` (and `cf-like-admin buildpacks`).
public struct BuildpacksCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "buildpacks", abstract: "List the platform's buildpacks in position order.",
                                                           discussion: "Example:\n  cf-like buildpacks --json")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let buildpacks = try await Session().all("/v3/buildpacks?order_by=position", as: BuildpackResource.self)
            if output.json { print(try Output.json(buildpacks)); return }
            Output.printTable(["position", "name", "stack", "enabled", "locked", "url"], buildpacks.map {
                ["\($0.position)", $0.name, $0.stack ?? "", $0.enabled ? "true" : "false", $0.locked ? "true" : "false", $0.url]
            })
        }
    }
}

/// `cf-like stacks`.
public struct StacksCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "stacks", abstract: "List the platform's stacks.",
                                                           discussion: "Example:\n  cf-like stacks")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let stacks = try await Session().all("/v3/stacks?order_by=name", as: StackResource.self)
            if output.json { print(try Output.json(stacks)); return }
            Output.printTable(["name", "default", "description"], stacks.map { [$0.name, $0.default ? "*" : "", $0.description ?? ""] })
        }
    }
}

/// `cf-like restart-app-instance APP INDEX`.
public struct RestartAppInstanceCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "restart-app-instance", abstract: "Stop one instance of an app; the platform starts a new one at its index.",
        discussion: "Example:\n  cf-like restart-app-instance hello 0")
    @Argument(help: "App name.") var name: String
    @Argument(help: "Instance index (as `cf-like app` shows it, without '#').") var index: Int
    @Option(name: .long, help: "Process type.") var process = "web"
    public init() {}

    public func validate() throws {
        if index < 0 { throw ValidationError("INDEX must be 0 or more") }
    }

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let app = try await session.requireApp(name)
            print("Restarting instance \(index) of process \(process) of app \(name)...")
            try PlatformClient.check(try await session.send("DELETE", "/v3/apps/\(app.guid)/processes/\(PlatformClient.query(process))/instances/\(index)"))
            print("Restarted instance \(index) of app \(name).")
        }
    }
}
