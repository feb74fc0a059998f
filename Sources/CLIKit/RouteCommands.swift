import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

/// `routes --json`: one route of the targeted space with the names of its apps.
struct RouteRow: Codable {
    var guid: String
    var host: String
    var domain: String
    var path: String
    var url: String
    var apps: [String]
}

/// Host and path as `map-route` and `unmap-route` take them (the API's own rules: one DNS label,
/// a path starting with '/').
struct RouteSpec {
    var hostname: String
    var path: String

    init(hostname: String?, path: String?) throws {
        let host = (hostname ?? "").lowercased()
        if !host.isEmpty {
            guard host.count <= 63, host.first != "-", host.last != "-",
                  host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
            else { throw ValidationError("--hostname must be one DNS label of letters, digits or hyphens") }
        }
        var p = path ?? ""
        if !p.isEmpty && !p.hasPrefix("/") { p = "/" + p }
        if !p.isEmpty {
            guard p != "/", !p.contains("?"), !p.contains("#"), !p.contains(" "), !p.split(separator: "/").contains("..") else {
                throw ValidationError("--path must be like /api: not '/' alone, no '?', '#', '..' or spaces")
            }
        }
        self.hostname = host
        self.path = p
    }

    func url(domain: String) -> String { (hostname.isEmpty ? domain : "\(hostname).\(domain)") + path }
}

extension Session {
    /// The route of that domain, host and path in the targeted space, or nil.
    func route(domain: DomainResource, _ spec: RouteSpec) async throws -> RouteResource? {
        let space = try targetSpace()
        var path = "/v3/routes?space_guids=\(space.guid)&domain_guids=\(domain.guid)"
        if !spec.hostname.isEmpty { path += "&hosts=\(PlatformClient.query(spec.hostname))" }
        let list = try await all(path, as: RouteResource.self)
        return list.first { $0.host == spec.hostname && $0.path == spec.path }
    }
}

/// `cf-like routes`.
public struct RoutesCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "List the routes of the targeted space and the apps they lead to.",
        discussion: "Example:\n  cf-like routes\n  cf-like routes --json")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let space = try session.targetSpace()
            let routes = try await session.all("/v3/routes?space_guids=\(space.guid)&order_by=created_at", as: RouteResource.self)
            let domains = try await session.all("/v3/domains", as: DomainResource.self)
            let apps = try await session.all("/v3/apps?space_guids=\(space.guid)", as: AppResource.self)
            let domainNames = Dictionary(domains.map { ($0.guid, $0.name) }, uniquingKeysWith: { a, _ in a })
            let appNames = Dictionary(apps.map { ($0.guid, $0.name) }, uniquingKeysWith: { a, _ in a })
            let rows = routes.map { route in
                var names: [String] = []
                for d in route.destinations {
                    let name = appNames[d.app.guid] ?? d.app.guid
                    if !names.contains(name) { names.append(name) }
                }
                return RouteRow(guid: route.guid, host: route.host,
                                domain: route.relationships["domain"]?.data.flatMap { domainNames[$0.guid] } ?? "",
                                path: route.path, url: route.url, apps: names)
            }
            if output.json { print(try Output.json(rows)); return }
            print("Getting routes in space \(space.name)...\n")
            Output.printTable(["host", "domain", "path", "apps"], rows.map { [$0.host, $0.domain, $0.path, $0.apps.joined(separator: ", ")] })
        }
    }
}

/// `cf-like map-route APP DOMAIN [--hostname H] [--path P]`.
public struct MapRouteCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "map-route", abstract: "Route a host (and path) of a domain to an app, creating the route if needed.",
        discussion: "Example:\n  cf-like map-route hello apps.localhost --hostname hi\n  cf-like map-route hello apps.localhost --hostname hi --path /api")
    @Argument(help: "App name.") var name: String
    @Argument(help: "Domain, e.g. apps.localhost.") var domain: String
    @Option(name: [.customLong("hostname"), .customShort("n")], help: "Host name (one DNS label).") var hostname: String?
    @Option(help: "Path, e.g. /api.") var path: String?
    public init() {}

    public func validate() throws { _ = try RouteSpec(hostname: hostname, path: path) }

    public func run() async throws {
        try await reportingErrors {
            let spec = try RouteSpec(hostname: hostname, path: path)
            let session = try Session()
            let app = try await session.requireApp(name)
            let target = try await session.find("/v3/domains", name: domain, kind: "Domain", as: DomainResource.self)
            let url = spec.url(domain: target.name)
            print("Mapping route \(url) to app \(name)...")
            var route = try await session.route(domain: target, spec)
            if route == nil {
                route = try await session.call("POST", "/v3/routes",
                                               json: CreateRouteRequest(host: spec.hostname, path: spec.path.isEmpty ? nil : spec.path,
                                                                        spaceGuid: try session.targetSpace().guid, domainGuid: target.guid),
                                               as: RouteResource.self)
                print("Created route \(url).")
            }
            guard let route else { return }
            if route.destinations.contains(where: { $0.app.guid == app.guid }) {
                print("Route \(url) is already mapped to app \(name).")
                return
            }
            _ = try await session.call("POST", "/v3/routes/\(route.guid)/destinations",
                                       json: DestinationsRequest(destinations: [RouteDestination(guid: nil, app: .init(guid: app.guid, process: .init(type: "web")), port: nil, protocol: nil)]),
                                       as: RouteDestinationsResponse.self)
            print("Mapped route \(url) to app \(name).")
        }
    }
}

/// `cf-like unmap-route APP DOMAIN [--hostname H] [--path P]`.
public struct UnmapRouteCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "unmap-route", abstract: "Stop routing a host (and path) of a domain to an app; the route itself stays.",
        discussion: "Example:\n  cf-like unmap-route hello apps.localhost --hostname hi")
    @Argument(help: "App name.") var name: String
    @Argument(help: "Domain, e.g. apps.localhost.") var domain: String
    @Option(name: [.customLong("hostname"), .customShort("n")], help: "Host name (one DNS label).") var hostname: String?
    @Option(help: "Path, e.g. /api.") var path: String?
    public init() {}

    public func validate() throws { _ = try RouteSpec(hostname: hostname, path: path) }

    public func run() async throws {
        try await reportingErrors {
            let spec = try RouteSpec(hostname: hostname, path: path)
            let session = try Session()
            let app = try await session.requireApp(name)
            let target = try await session.find("/v3/domains", name: domain, kind: "Domain", as: DomainResource.self)
            let url = spec.url(domain: target.name)
            guard let route = try await session.route(domain: target, spec) else {
                throw CLIError.operation("Route \(url) does not exist in space \(try session.targetSpace().name)")
            }
            let mine = route.destinations.filter { $0.app.guid == app.guid }
            if mine.isEmpty { print("Route \(url) is not mapped to app \(name)."); return }
            print("Removing route \(url) from app \(name)...")
            for destination in mine {
                guard let guid = destination.guid else { continue }
                try PlatformClient.check(try await session.send("DELETE", "/v3/routes/\(route.guid)/destinations/\(guid)"))
            }
            print("Unmapped route \(url) from app \(name).")
        }
    }
}
