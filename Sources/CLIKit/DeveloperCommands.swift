import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

/// `--json` on listings and show commands.
public struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print JSON for scripts instead of a table.")
    public var json = false
    public init() {}
}

/// `cf-like api [URL]`: show or set the API endpoint.
public struct APICommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "api", abstract: "Show or set the API endpoint.",
        discussion: "Example:\n  cf-like api http://127.0.0.1:9022")
    @Argument(help: "API URL, e.g. http://127.0.0.1:9022") var url: String?
    public init() {}

    public func validate() throws {
        if let url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("the API URL must start with http:// or https://")
        }
    }

    public func run() async throws {
        try await reportingErrors {
            var config = try TargetConfig.load()
            guard let url else {
                print(config.api.map { "API endpoint: \($0)" } ?? "No API endpoint set. Use `cf-like api URL`.")
                return
            }
            let client = PlatformClient(api: url)
            let info = try await client.send("GET", "/v3/info", token: nil)
            guard info.status == 200 else { throw CLIError.operation("\(url) does not look like a cf-like API (HTTP \(info.status))") }
            if config.api != client.api { config = TargetConfig() }
            config.api = client.api
            try config.save()
            print("API endpoint set to \(client.api)")
        }
    }
}

/// `cf-like login`.
public struct LoginCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Log in and optionally target an org and space.",
        discussion: "Prompts (without echo for the password) when a value is missing and a terminal is attached.\n\nExample:\n  cf-like login -a http://127.0.0.1:9022 -u admin -p \"$(cat var/admin-password)\"")
    @Option(name: .short, help: "API URL.") var a: String?
    @Option(name: .short, help: "Username.") var u: String?
    @Option(name: .short, help: "Password (prefer the prompt: arguments show in process lists).") var p: String?
    @Option(name: .short, help: "Organization to target.") var o: String?
    @Option(name: .short, help: "Space to target.") var s: String?
    public init() {}

    public func run() async throws {
        try await reportingErrors {
            var config = try TargetConfig.load()
            if let a { config.api = a.hasSuffix("/") ? String(a.dropLast()) : a }
            guard let api = config.api else { throw CLIError.usage("no API set; pass -a URL") }
            guard let username = u ?? Output.readLineIfTerminal("Username: "), !username.isEmpty else {
                throw CLIError.usage("a username is required (-u)")
            }
            guard let password = p ?? Output.readSecret("Password: "), !password.isEmpty else {
                throw CLIError.usage("a password is required (-p, or run on a terminal to be prompted)")
            }
            let client = PlatformClient(api: api)
            let tokens: TokenResponse
            do {
                tokens = try await client.login(username: username, password: password)
            } catch let failure as PlatformClient.Failure where failure.status == 401 {
                throw CLIError.api("login failed: bad username or password", hint: nil)
            }
            config.api = client.api
            config.accessToken = tokens.accessToken
            config.refreshToken = tokens.refreshToken
            config.username = username
            config.organizationGuid = nil; config.organizationName = nil; config.spaceGuid = nil; config.spaceName = nil
            try config.save()
            print("Logged in to \(client.api) as \(username).")
            if o != nil || s != nil {
                try await TargetCommand.retarget(org: o, space: s)
            }
        }
    }
}

/// `cf-like logout`.
public struct LogoutCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "logout", abstract: "Forget the tokens.",
                                                           discussion: "Example:\n  cf-like logout")
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            var config = try TargetConfig.load()
            config.accessToken = nil; config.refreshToken = nil; config.username = nil
            try config.save()
            print("Logged out.")
        }
    }
}

/// `cf-like target [-o ORG] [-s SPACE]`.
public struct TargetCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "target", abstract: "Show or set the targeted org and space.",
        discussion: "Example:\n  cf-like target -o acme -s dev")
    @Option(name: .short, help: "Organization.") var o: String?
    @Option(name: .short, help: "Space.") var s: String?
    public init() {}

    public func run() async throws {
        try await reportingErrors {
            if o != nil || s != nil { try await Self.retarget(org: o, space: s) }
            let config = try TargetConfig.load()
            print(Output.table(["", ""], [["API endpoint:", config.api ?? "-"], ["user:", config.username ?? "-"],
                                          ["org:", config.organizationName ?? "-"], ["space:", config.spaceName ?? "-"]])
                .split(separator: "\n").dropFirst().joined(separator: "\n"))
        }
    }

    static func retarget(org: String?, space: String?) async throws {
        let session = try Session()
        var orgGuid = session.config.organizationGuid
        var orgName = session.config.organizationName
        if let org {
            let found = try await session.find("/v3/organizations", name: org, kind: "Organization", as: OrganizationResource.self)
            orgGuid = found.guid; orgName = found.name
            session.update { $0.organizationGuid = found.guid; $0.organizationName = found.name; $0.spaceGuid = nil; $0.spaceName = nil }
        }
        if let space {
            guard let orgGuid else { throw CLIError.usage("target an org first (-o ORG)") }
            let found = try await session.find("/v3/spaces?organization_guids=\(orgGuid)", name: space, kind: "Space in org '\(orgName ?? "")'",
                                               as: SpaceResource.self)
            session.update { $0.spaceGuid = found.guid; $0.spaceName = found.name }
        }
        try session.save()
    }
}

/// `cf-like orgs`.
public struct OrgsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "orgs", abstract: "List organizations you can see.",
                                                           discussion: "Example:\n  cf-like orgs --json")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let orgs = try await Session().all("/v3/organizations?order_by=name", as: OrganizationResource.self)
            if output.json { print(try Output.json(orgs)); return }
            Output.printTable(["name"], orgs.map { [$0.name] })
        }
    }
}

/// `cf-like spaces`.
public struct SpacesCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "spaces", abstract: "List spaces of the targeted org.",
                                                           discussion: "Example:\n  cf-like spaces")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            guard let org = session.config.organizationGuid else { throw CLIError.usage("no org targeted; run `cf-like target -o ORG`") }
            let spaces = try await session.all("/v3/spaces?organization_guids=\(org)&order_by=name", as: SpaceResource.self)
            if output.json { print(try Output.json(spaces)); return }
            Output.printTable(["name"], spaces.map { [$0.name] })
        }
    }
}

/// `cf-like apps`.
public struct AppsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "apps", abstract: "List apps of the targeted space.",
                                                           discussion: "Example:\n  cf-like apps")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let space = try session.targetSpace()
            let apps = try await session.all("/v3/apps?space_guids=\(space.guid)&order_by=name", as: AppResource.self)
            if output.json { print(try Output.json(apps)); return }
            Output.printTable(["name", "state"], apps.map { [$0.name, $0.state.lowercased()] })
        }
    }
}

/// `cf-like curl PATH [-X METHOD] [-d DATA]`: a raw API call, as `cf curl`.
public struct CurlCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "curl", abstract: "Call the API directly with your token.",
        discussion: "Example:\n  cf-like curl /v3/apps\n  cf-like curl -X POST /v3/organizations -d '{\"name\":\"acme\"}'")
    @Argument(help: "Path such as /v3/apps.") var path: String
    @Option(name: .short, help: "HTTP method.") var X = "GET"
    @Option(name: .short, help: "Request body (JSON); @FILE reads a file.") var d: String?
    public init() {}

    public func validate() throws {
        guard path.hasPrefix("/") else { throw ValidationError("the path must start with '/'") }
        guard ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(X.uppercased()) else { throw ValidationError("unknown method \(X)") }
    }

    public func run() async throws {
        try await reportingErrors {
            var body: Data?
            if let d {
                if d.hasPrefix("@") {
                    guard let data = FileManager.default.contents(atPath: String(d.dropFirst())) else {
                        throw CLIError.usage("cannot read \(d.dropFirst())")
                    }
                    body = data
                } else {
                    body = Data(d.utf8)
                }
            }
            let answer = try await Session().send(X.uppercased(), path, body: body)
            if let object = try? JSONSerialization.jsonObject(with: answer.body),
               let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
                print(String(decoding: pretty, as: UTF8.self))
            } else if !answer.body.isEmpty {
                print(answer.text)
            }
            if answer.status >= 400 { throw ExitCode(1) }
        }
    }
}
