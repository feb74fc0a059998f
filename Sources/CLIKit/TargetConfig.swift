import Foundation

/// What `cf-like` remembers between runs: API, tokens and target, in `~/.cf-like/config.json`
/// (mode 0600; `CF_LIKE_HOME` overrides the directory).
public struct TargetConfig: Codable, Sendable, Equatable {
    public var api: String?
    public var accessToken: String?
    public var refreshToken: String?
    public var username: String?
    public var organizationGuid: String?
    public var organizationName: String?
    public var spaceGuid: String?
    public var spaceName: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case api, accessToken = "access_token", refreshToken = "refresh_token", username
        case organizationGuid = "organization_guid", organizationName = "organization_name"
        case spaceGuid = "space_guid", spaceName = "space_name"
    }

    /// The directory holding config.json.
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["CF_LIKE_HOME"], !home.isEmpty { return home }
        let userHome = environment["HOME"] ?? NSHomeDirectory()
        return userHome + "/.cf-like"
    }

    public static func path(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        directory(environment: environment) + "/config.json"
    }

    /// Loads the config, or an empty one when none exists yet.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TargetConfig {
        let path = path(environment: environment)
        guard let data = FileManager.default.contents(atPath: path) else { return TargetConfig() }
        do {
            return try JSONDecoder().decode(TargetConfig.self, from: data)
        } catch {
            throw CLIError.usage("the configuration in \(path) is unreadable; remove it and log in again")
        }
    }

    /// Saves with mode 0600 (it holds tokens), atomically.
    public func save(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let dir = Self.directory(environment: environment)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        let tmp = dir + "/.config.json.\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw CLIError.operation("cannot write \(tmp)")
        }
        _ = rename(tmp, Self.path(environment: environment))
    }
}
