import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

extension Session {
    func buildpack(named name: String) async throws -> BuildpackResource {
        try await find("/v3/buildpacks", name: name, kind: "Buildpack", as: BuildpackResource.self)
    }
}

/// `cf-like-admin create-buildpack NAME GIT_URL[#REF] [--position N]`.
public struct CreateBuildpackCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "create-buildpack", abstract: "Register a buildpack from a git repository.",
        discussion: "The URL may name a branch or tag after '#'. Without --position the buildpack goes last.\n\nExample:\n  cf-like-admin create-buildpack ruby https://github.com/acme/ruby-buildpack#v1.2 --position 1")
    @Argument(help: "Buildpack name.") var name: String
    @Argument(help: "git URL, optionally with #branch or #tag.") var url: String
    @Option(help: "Position in detection order (1 is tried first).") var position: Int?
    public init() {}

    public func validate() throws {
        if let position, position < 1 { throw ValidationError("--position must be 1 or more") }
    }

    public func run() async throws {
        try await reportingErrors {
            let bp = try await Session().call("POST", "/v3/buildpacks", json: BuildpackRequest(name: name, url: url, position: position),
                                              as: BuildpackResource.self)
            print("Created buildpack \(bp.name) at position \(bp.position).")
        }
    }
}

/// `cf-like-admin update-buildpack NAME [--position N] [--enable|--disable] [--lock|--unlock] [--url URL]`.
public struct UpdateBuildpackCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "update-buildpack", abstract: "Change a buildpack's position, state or URL.",
        discussion: "Example:\n  cf-like-admin update-buildpack ruby --position 2 --disable")
    @Argument(help: "Buildpack name.") var name: String
    @Option(help: "Position in detection order.") var position: Int?
    @Flag(name: .customLong("enable"), help: "Use the buildpack in detection.") var enable = false
    @Flag(name: .customLong("disable"), help: "Leave the buildpack out of detection and builds.") var disable = false
    @Flag(name: .customLong("lock"), help: "Lock the buildpack against URL changes.") var lock = false
    @Flag(name: .customLong("unlock"), help: "Unlock the buildpack.") var unlock = false
    @Option(help: "New git URL.") var url: String?
    public init() {}

    public func validate() throws {
        if enable && disable { throw ValidationError("--enable and --disable exclude each other") }
        if lock && unlock { throw ValidationError("--lock and --unlock exclude each other") }
        if let position, position < 1 { throw ValidationError("--position must be 1 or more") }
        if position == nil, !enable, !disable, !lock, !unlock, url == nil { throw ValidationError("nothing to change: give an option") }
    }

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let bp = try await session.buildpack(named: name)
            let request = BuildpackRequest(url: url, position: position, enabled: enable ? true : disable ? false : nil,
                                           locked: lock ? true : unlock ? false : nil)
            let updated = try await session.call("PATCH", "/v3/buildpacks/\(bp.guid)", json: request, as: BuildpackResource.self)
            print("Updated buildpack \(updated.name): position \(updated.position), \(updated.enabled ? "enabled" : "disabled"), \(updated.locked ? "locked" : "unlocked").")
        }
    }
}

/// `cf-like-admin delete-buildpack NAME`.
public struct DeleteBuildpackCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "delete-buildpack", abstract: "Delete a buildpack.",
                                                           discussion: "Example:\n  cf-like-admin delete-buildpack ruby")
    @Argument(help: "Buildpack name.") var name: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let bp = try await session.buildpack(named: name)
            try PlatformClient.check(try await session.send("DELETE", "/v3/buildpacks/\(bp.guid)"))
            print("Deleted buildpack \(name).")
        }
    }
}
