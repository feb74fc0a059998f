import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

/// `cf-like push [APP] ...`: the whole cf push sequence over the public API.
public struct PushCommand: AsyncParsableCommand, Sendable {
    public static let configuration = CommandConfiguration(
        commandName: "push", abstract: "Push an app: upload its source, stage it and run it.",
        discussion: """
            Reads manifest.yml in the app directory (or -f FILE) unless --no-manifest; flags override it.
            Honours .cfignore; files the platform already holds (64 KiB and up) are not uploaded again.
            A manifest's `processes:` entries (type, instances, memory, disk_quota, command,
            health-check-type, health-check-http-endpoint, timeout) are applied after staging; flags
            win over the web entry. Ctrl-C before the app is started deletes an app (and routes)
            this push created, or leaves an existing app as it was; the exit status is then 130.

            Example:
              cf-like push hello -p buildpacks/python/fixtures/stdlib -m 256M -i 2
              cf-like push -f manifest.yml --var env=staging
            """)
    @Argument(help: "App name (default: the manifest's).") var name: String?
    @Option(name: .short, help: "App directory (default: the manifest's path, else the current directory).") var p: String?
    @Option(name: .short, help: "Buildpack name or git URL; repeat for several.") var b: [String] = []
    @Option(name: .short, help: "Memory per instance, e.g. 256M or 1G.") var m: String?
    @Option(name: .short, help: "Disk per instance, e.g. 1G.") var k: String?
    @Option(name: .short, help: "Number of instances.") var i: Int?
    @Option(name: .short, help: "Start command.") var c: String?
    @Option(name: .short, help: "Health check type: port, http or process.") var u: String?
    @Option(name: .long, help: "HTTP health check endpoint (with -u http).") var endpoint: String?
    @Option(name: .short, help: "Seconds an instance may take to start.") var t: Int?
    @Flag(help: "Stage the app but do not start it.") var noStart = false
    @Flag(help: "Do not map a route.") var noRoute = false
    @Option(name: .short, help: "Manifest file.") var f: String?
    @Flag(help: "Ignore manifest.yml.") var noManifest = false
    @Option(name: .customLong("var"), help: "Manifest variable as NAME=VALUE; repeat for several.") var vars: [String] = []
    @Flag(help: "Print the upload's sizes and the API steps.") var verbose = false
    public init() {}

    public func validate() throws {
        if let u, !["port", "http", "process"].contains(u) { throw ValidationError("-u takes port, http or process") }
        if let i, i < 0 { throw ValidationError("-i must be 0 or more") }
        if let t, t <= 0 { throw ValidationError("-t must be a positive number of seconds") }
        if f != nil, noManifest { throw ValidationError("-f and --no-manifest exclude each other") }
        for v in vars where !v.contains("=") { throw ValidationError("--var takes NAME=VALUE, not '\(v)'") }
        if let m { _ = try AppManifest.megabytes(m, field: "-m") }
        if let k { _ = try AppManifest.megabytes(k, field: "-k") }
    }

    /// What the flags say, as a manifest entry to lay over the manifest's.
    func flagSettings() throws -> AppManifest {
        var s = AppManifest()
        s.name = name
        s.path = p
        s.buildpacks = b.isEmpty ? nil : b
        s.memoryMB = try m.map { try AppManifest.megabytes($0, field: "-m") }
        s.diskMB = try k.map { try AppManifest.megabytes($0, field: "-k") }
        s.instances = i
        s.command = c
        s.healthCheckType = u
        s.healthCheckEndpoint = endpoint
        s.timeout = t
        s.noRoute = noRoute
        return s
    }

    /// The manifest's settings for the app (if any) with the flags over them, and the app directory.
    public func settings(currentDirectory: String = FileManager.default.currentDirectoryPath) throws -> (AppManifest, String) {
        let flags = try flagSettings()
        var base = AppManifest()
        var manifestDir = currentDirectory
        if !noManifest {
            var file = f.map { $0.hasPrefix("/") ? $0 : currentDirectory + "/" + $0 }
            if file == nil {
                let dir = p.map { $0.hasPrefix("/") ? $0 : currentDirectory + "/" + $0 } ?? currentDirectory
                if FileManager.default.fileExists(atPath: dir + "/manifest.yml") { file = dir + "/manifest.yml" }
            }
            if let file {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CLIError.usage("cannot read the manifest \(file)") }
                var values: [String: String] = [:]
                for v in vars { let parts = v.split(separator: "=", maxSplits: 1); values[String(parts[0])] = parts.count > 1 ? String(parts[1]) : "" }
                base = try AppManifest.select(try AppManifest.parse(text, vars: values), name: name)
                manifestDir = (file as NSString).deletingLastPathComponent
            }
        }
        var merged = base.overridden(by: flags)
        merged.processes = base.processes(overriddenBy: flags)
        guard merged.name != nil else { throw CLIError.usage("name the app: `cf-like push APP` or a manifest with a name") }
        let dir: String
        if let p { dir = p.hasPrefix("/") ? p : currentDirectory + "/" + p }
        else if let path = base.path { dir = path.hasPrefix("/") ? path : manifestDir + "/" + path }
        else { dir = manifestDir }
        merged.path = (dir as NSString).standardizingPath
        return (merged, merged.path!)
    }

    public func run() async throws {
        try await reportingErrors {
            let (settings, dir) = try settings()
            let session = try Session()
            let space = try session.targetSpace()
            let interrupt = PushInterrupt()
            interrupt.install()
            defer { interrupt.remove() }
            let me = self
            let task = Task { try await me.push(session, settings, dir: dir, space: space, interrupt: interrupt) }
            interrupt.watch(task)
            do {
                try await task.value
            } catch {
                guard interrupt.fired else { throw error }
                await interrupt.undo(session)
                throw ExitCode(130)
            }
        }
    }

    /// The push itself: nothing of an existing app changes before staging succeeded (but its
    /// environment variables, which staging reads and Ctrl-C puts back); then the app's settings,
    /// droplet, processes and routes are applied and it is started.
    func push(_ session: Session, _ settings: AppManifest, dir: String, space: (guid: String, name: String),
              interrupt: PushInterrupt) async throws {
        let name = settings.name!  // settings() fails without a name
        let started = Date()
        interrupt.setAppName(name)
        Self.say("Pushing app \(name) to space \(space.name) as \(session.config.username ?? "?")...")

        let existing = try await session.app(named: name)
        try await Self.checkProcessTypes(session, existing, settings.processes)
        let routes = try await wantedRoutes(session, existing, settings)
        try await Self.checkRoutesAvailable(session, routes, space: space.guid)
        let app: AppResource
        if let existing {
            app = existing
            interrupt.existing(app: existing.guid)
            try await applyEnvironment(session, existing, settings, interrupt: interrupt)
        } else {
            app = try await createApp(session, settings, space: space.guid, interrupt: interrupt)
            try await Self.updateProcess(session, app, Self.webSettings(settings))
            try await applyRoutes(session, app, routes, space: space.guid, interrupt: interrupt)
        }

        Self.say("Uploading files from \(dir)...")
        let package = try await upload(session, app, dir: dir, interrupt: interrupt)
        Self.say("Staging app...")
        let droplet = try await Self.stage(session, app, package: package, buildpacks: existing == nil ? nil : settings.buildpacks,
                                           onBuild: { interrupt.buildMade() })

        try interrupt.enter(.committing)
        if existing != nil {
            if let buildpacks = settings.buildpacks {
                _ = try await session.call("PATCH", "/v3/apps/\(app.guid)",
                                           json: UpdateAppRequest(lifecycle: Lifecycle(type: "buildpack", data: .init(buildpacks: buildpacks, stack: nil))),
                                           as: AppResource.self)
            }
            try await Self.updateProcess(session, app, Self.webSettings(settings))
            try await applyRoutes(session, app, routes, space: space.guid, interrupt: interrupt)
        }
        _ = try await session.call("PATCH", "/v3/apps/\(app.guid)/relationships/current_droplet",
                                   json: SetCurrentDropletRequest(guid: droplet), as: CurrentDropletRelationship.self)
        for process in settings.processes {
            Self.say("Applying the manifest's settings of process \(process.type)...")
            try await Self.updateProcess(session, app, process)
        }
        var current = try await session.requireApp(name)
        if noStart {
            if current.state == "STARTED" { current = try await session.action(current, "stop") }
            try interrupt.enter(.updated)
        } else {
            Self.say("Waiting for app \(name) to start...")
            current = try await session.action(current, current.state == "STARTED" ? "restart" : "start")
            try interrupt.enter(.started)
            try await session.waitForInstances(current, timeout: (settings.timeout ?? 60) + 60)
        }
        if verbose { print(String(format: "Push took %.1f s.", Date().timeIntervalSince(started))) }
        print("")
        try await Self.printSummary(session, current)
    }

    /// Creates the app with its environment variables and buildpacks.
    func createApp(_ session: Session, _ s: AppManifest, space: String, interrupt: PushInterrupt) async throws -> AppResource {
        Self.say("Creating app \(s.name!)...")
        var request = CreateAppRequest(name: s.name!, spaceGuid: space, environmentVariables: s.env.isEmpty ? nil : s.env)
        request.lifecycle = s.buildpacks.map { Lifecycle(type: "buildpack", data: .init(buildpacks: $0, stack: nil)) }
        interrupt.creating()
        let app = try await session.call("POST", "/v3/apps", json: request, as: AppResource.self)
        interrupt.created(app: app.guid)
        return app
    }

    /// Sets an existing app's environment variables from the manifest, remembering the old
    /// values so that Ctrl-C can put them back.
    func applyEnvironment(_ session: Session, _ app: AppResource, _ s: AppManifest, interrupt: PushInterrupt) async throws {
        guard !s.env.isEmpty else { return }
        let old = try await session.call("GET", "/v3/apps/\(app.guid)/environment_variables", as: EnvironmentVariablesResource.self).var
        let changed = s.env.filter { old[$0.key] != $0.value }
        guard !changed.isEmpty else { return }
        interrupt.restore(env: Dictionary(uniqueKeysWithValues: changed.keys.map { ($0, old[$0]) }))
        _ = try await session.call("PATCH", "/v3/apps/\(app.guid)/environment_variables",
                                   json: EnvironmentVariablesPatch(var: changed), as: EnvironmentVariablesResource.self)
    }

    /// Prints a progress line at once, also when stdout is a file or a pipe.
    static func say(_ line: String) {
        print(line)
        fflush(nil)
    }

    /// The top-level settings (and flags) as settings of the web process.
    static func webSettings(_ s: AppManifest) -> AppManifest.ProcessSettings {
        var web = AppManifest.ProcessSettings(type: "web")
        web.instances = s.instances
        web.memoryMB = s.memoryMB
        web.diskMB = s.diskMB
        web.command = s.command
        web.healthCheckType = s.healthCheckType
        web.healthCheckEndpoint = s.healthCheckEndpoint
        web.timeout = s.timeout
        return web
    }

    /// Fails before anything is made when `processes:` names a type the app does not have.
    static func checkProcessTypes(_ session: Session, _ app: AppResource?, _ processes: [AppManifest.ProcessSettings]) async throws {
        guard processes.contains(where: { $0.type != "web" }) else { return }
        var have: Set<String> = ["web"]
        if let app { have = Set(try await session.all("/v3/apps/\(app.guid)/processes", as: ProcessResource.self).map(\.type)) }
        let missing = processes.map(\.type).filter { !have.contains($0) }
        guard missing.isEmpty else {
            throw CLIError.usage(missingProcessesMessage(missing, have: have))
        }
    }

    static func missingProcessesMessage(_ missing: [String], have: Set<String>) -> String {
        "the manifest's processes name \(missing.map { "'\($0)'" }.joined(separator: ", ")), but the app has only "
            + "\(have.sorted().joined(separator: ", ")) (the platform runs web processes only)"
    }

    /// Applies one process's command, health check and scale with the process update and scale endpoints.
    static func updateProcess(_ session: Session, _ app: AppResource, _ s: AppManifest.ProcessSettings) async throws {
        guard s.updatesProcess || s.scales else { return }
        let process = try await session.call("GET", "/v3/apps/\(app.guid)/processes/\(s.type)", as: ProcessResource.self)
        if s.updatesProcess {
            var check: UpdateProcessRequest.HealthCheckPatch?
            if s.healthCheckType != nil || s.healthCheckEndpoint != nil || s.timeout != nil {
                let type = s.healthCheckType ?? process.healthCheck.type
                check = .init(type: type, data: .init(timeout: s.timeout, endpoint: type == "http" ? (s.healthCheckEndpoint ?? "/") : nil))
            }
            _ = try await session.call("PATCH", "/v3/processes/\(process.guid)",
                                       json: UpdateProcessRequest(command: s.command, healthCheck: check), as: ProcessResource.self)
        }
        if s.scales {
            _ = try await session.call("POST", "/v3/processes/\(process.guid)/actions/scale",
                                       json: ScaleRequest(instances: s.instances, memoryInMB: s.memoryMB, diskInMB: s.diskMB),
                                       as: ProcessResource.self)
        }
    }

    /// A route the push maps: host (maybe empty), path (maybe empty) and domain.
    typealias WantedRoute = (host: String, path: String, domain: DomainResource)

    /// The manifest's routes, or the default `APP.<domain>` when the app has none yet (nothing
    /// with `--no-route`, or for an existing app that has routes and a manifest without any).
    func wantedRoutes(_ session: Session, _ existing: AppResource?, _ s: AppManifest) async throws -> [WantedRoute] {
        if s.noRoute { return [] }
        if s.routes.isEmpty {
            if let existing, try await !session.routes(of: existing).isEmpty { return [] }
            return [(Self.hostName(s.name!), "", try await session.defaultDomain())]
        }
        let domains = try await session.all("/v3/domains", as: DomainResource.self)
        return try s.routes.map { try Self.splitRoute($0, domains: domains) }
    }

    static func routeText(_ w: WantedRoute) -> String {
        "\(w.host.isEmpty ? "" : w.host + ".")\(w.domain.name)\(w.path)"
    }

    /// The target space's own route for `w`, if it has one.
    static func ownRoute(_ session: Session, _ w: WantedRoute, space: String) async throws -> RouteResource? {
        let list = try await session.call(
            "GET", "/v3/routes?hosts=\(PlatformClient.query(w.host))&domain_guids=\(w.domain.guid)&space_guids=\(space)",
            as: ListResponse<RouteResource>.self)
        return list.resources.first { $0.path == w.path }
    }

    /// Before anything is created, uploaded or staged: each route the push maps is the target
    /// space's own or free. One that another space holds ends the push here, naming it.
    static func checkRoutesAvailable(_ session: Session, _ routes: [WantedRoute], space: String) async throws {
        for w in routes where try await ownRoute(session, w, space: space) == nil {
            var query = "host=\(PlatformClient.query(w.host))"
            if !w.path.isEmpty { query += "&path=\(PlatformClient.query(w.path))" }
            let reservation = try await session.call("GET", "/v3/domains/\(w.domain.guid)/route_reservations?\(query)",
                                                     as: RouteReservation.self)
            if reservation.matchingRoute {
                throw CLIError.operation("Route \(routeText(w)) is taken by another space. Push under another app name, "
                    + "name a route of your own in the manifest (routes:), or push with --no-route.")
            }
        }
    }

    /// Maps `routes` to the app, creating the ones the space does not have yet.
    func applyRoutes(_ session: Session, _ app: AppResource, _ routes: [WantedRoute], space: String,
                     interrupt: PushInterrupt? = nil) async throws {
        for w in routes {
            var route = try await Self.ownRoute(session, w, space: space)
            if route == nil {
                Self.say("Creating route \(Self.routeText(w))...")
                interrupt?.creatingRoute(host: w.host, path: w.path, domain: w.domain.guid)
                let made = try await session.call("POST", "/v3/routes", json: CreateRouteRequest(
                    host: w.host, path: w.path.isEmpty ? nil : w.path, spaceGuid: space, domainGuid: w.domain.guid), as: RouteResource.self)
                interrupt?.created(route: made.guid, url: made.url)
                route = made
            }
            guard let route, !route.destinations.contains(where: { $0.app.guid == app.guid }) else { continue }
            _ = try await session.call("POST", "/v3/routes/\(route.guid)/destinations",
                                       json: DestinationsRequest(destinations: [RouteDestination(guid: nil, app: .init(guid: app.guid, process: nil), port: nil, protocol: nil)]),
                                       as: RouteDestinationsResponse.self)
        }
    }

    /// A host name from an app name (CF lower-cases and turns what a host cannot hold into `-`).
    static func hostName(_ app: String) -> String {
        String(app.lowercased().map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" })
    }

    /// `host.domain/path` split on the longest known domain.
    static func splitRoute(_ route: String, domains: [DomainResource]) throws -> (host: String, path: String, domain: DomainResource) {
        var text = route
        if let scheme = text.range(of: "://") { text = String(text[scheme.upperBound...]) }
        var path = ""
        if let slash = text.firstIndex(of: "/") { path = String(text[slash...]); text = String(text[..<slash]) }
        for domain in domains.sorted(by: { $0.name.count > $1.name.count }) {
            if text == domain.name { return ("", path, domain) }
            if text.hasSuffix("." + domain.name) { return (String(text.dropLast(domain.name.count + 1)), path, domain) }
        }
        throw CLIError.usage("the route \(route) is in no domain the platform knows")
    }

    /// Hashes, matches, zips and uploads the app's files into a new package; waits for READY.
    func upload(_ session: Session, _ app: AppResource, dir: String, interrupt: PushInterrupt? = nil) async throws -> PackageResource {
        let bits = try AppBits(root: dir)
        var matched: [BitsResource] = []
        let candidates = bits.matchCandidates
        if !candidates.isEmpty {
            for chunk in stride(from: 0, to: candidates.count, by: 5000) {
                let slice = Array(candidates[chunk..<min(chunk + 5000, candidates.count)])
                let answer = try await session.call("POST", "/v3/resource_matches", json: ResourceMatchList(resources: slice),
                                                    as: ResourceMatchList.self)
                let known = Set(answer.resources.map { "\($0.checksum.value):\($0.sizeInBytes)" })
                matched += slice.filter { known.contains("\($0.checksum.value):\($0.sizeInBytes)") }
            }
        }
        let paths = bits.zipPaths(excluding: matched)
        let zip = try bits.zip(paths)
        let matchedBytes = matched.reduce(Int64(0)) { $0 + $1.sizeInBytes }
        let files = bits.entries.filter(\.isRegularFile).count
        print("   \(files) files, \(AppSummary.size(bits.totalBytes)); \(matched.count) already on the platform (\(AppSummary.size(matchedBytes)))")
        if verbose { print("   upload: \(zip?.count ?? 0) bytes of zip, \(matched.count) resources matched (\(matchedBytes) bytes)") }

        let package = try await session.call("POST", "/v3/packages", json: CreatePackageRequest(appGuid: app.guid), as: PackageResource.self)
        interrupt?.packageMade()
        let terminal = isatty(STDOUT_FILENO) == 1
        var progress: (@Sendable (Int, Int) -> Void)?
        if terminal {
            progress = { @Sendable (sent: Int, total: Int) -> Void in
                let text = "\r   uploading \(AppSummary.size(Int64(sent))) of \(AppSummary.size(Int64(total)))"
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
        _ = try await session.client.uploadPackage(package.guid, zip: zip, resources: matched, token: session.config.accessToken,
                                                   progress: progress)
        if terminal { print("") }
        let deadline = Date().addingTimeInterval(300)
        while true {
            let current = try await session.call("GET", "/v3/packages/\(package.guid)", as: PackageResource.self)
            if current.state == "READY" { return current }
            if current.state == "FAILED" { throw CLIError.operation("the upload failed: \(current.data.error ?? "no reason given")") }
            if Date() > deadline { throw CLIError.operation("the package was not ready after 300 s (state \(current.state))") }
            try await Task.sleep(for: .milliseconds(300))
        }
    }

    /// Creates a build of `package`, printing the staging log as it arrives; answers the droplet
    /// guid or fails with the build's error and the last staging lines.
    static func stage(_ session: Session, _ app: AppResource, package: PackageResource, buildpacks: [String]?,
                      onBuild: () -> Void = {}) async throws -> String {
        var cursor = try await session.recentLogs(app, lines: 1).nextCursor
        var request = CreateBuildRequest(packageGuid: package.guid)
        if let buildpacks { request.lifecycle = Lifecycle(type: "buildpack", data: .init(buildpacks: buildpacks, stack: nil)) }
        var build = try await session.call("POST", "/v3/builds", json: request, as: BuildResource.self)
        onBuild()
        var staging: [String] = []
        func drain() async throws {
            let page = try await session.recentLogs(app, after: cursor)
            cursor = page.nextCursor
            for line in page.lines where line.sourceType == "STG" {
                print("   \(Output.safe(line.message))")
                staging.append(line.message)
            }
            fflush(nil)
        }
        let deadline = Date().addingTimeInterval(20 * 60)
        while build.state == "STAGING" {
            try await Task.sleep(for: .milliseconds(500))
            try await drain()
            build = try await session.call("GET", "/v3/builds/\(build.guid)", as: BuildResource.self)
            if Date() > deadline { throw CLIError.operation("staging did not finish within 20 minutes") }
        }
        try await drain()
        guard build.state == "STAGED", let droplet = build.droplet?.guid else {
            var message = "Staging of \(app.name) failed: \(build.error ?? build.state)"
            if !staging.isEmpty { message += "\nlast staging log lines:\n" + staging.suffix(10).map { "  \($0)" }.joined(separator: "\n") }
            throw CLIError.operation(message)
        }
        return droplet
    }

    /// Prints cf's app summary.
    static func printSummary(_ session: Session, _ app: AppResource) async throws {
        let process = try await session.webProcess(app)
        let stats = try await session.instanceStats(process)
        let routes = try await session.routes(of: app)
        let droplet = try await session.currentDroplet(app)
        let crashes = Dictionary(stats.map { ($0.stats.index, $0.crashes) }, uniquingKeysWith: { a, _ in a })
        print(AppSummary.render(app: app, process: process, stats: stats.map(\.stats), crashes: crashes, routes: routes, droplet: droplet),
              terminator: "")
    }
}
