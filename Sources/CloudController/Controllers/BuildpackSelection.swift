import Foundation
import GitFetch
import PlatformModels
import PostgresStore

/// Which buildpacks a build stages with, from what a user named (the build's or the app's
/// `lifecycle.data.buildpacks`) and the admin buildpacks.
///
/// A named entry is an admin buildpack's name, else a git URL (`URL`, `URL#ref`) the app brings
/// itself. Such a URL is untrusted: `GitURLPolicy.default` applies (https only) and `file://`
/// URLs and local paths are refused, since they would read the stager's file system. URLs are
/// shown redacted only, and the real text of a URL with credentials is kept sealed (SECURITY.md
/// C8, F8) under the same key as admin buildpack URLs.
enum BuildpackSelection {
    static let maxNamed = 32

    static func box(_ config: ControllerConfig) -> SecretBox {
        SecretBox(secret: config.tokenSigningKey, purpose: "buildpack url")
    }

    /// How a named entry may be shown: a name as given, a URL redacted. Text the parser refused
    /// may still hold credentials in a shape it did not understand, so any userinfo-like part
    /// is masked too.
    static func display(_ entry: String) -> String {
        if let source = try? GitSource(parsing: entry) { return source.url.hasCredentials ? source.description : entry }
        var prefix = ""
        var rest = Substring(entry)
        if let scheme = entry.range(of: "://") {
            prefix = String(entry[..<scheme.upperBound])
            rest = entry[scheme.upperBound...]
        }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") { return prefix + "***" + rest[at...] }
        return entry
    }

    /// The entry as a source an app may use, or 422 naming it (redacted) and saying why.
    static func userSource(_ entry: String, policy: GitURLPolicy) throws -> GitSource {
        do {
            let source = try GitSource(parsing: entry, trusted: false)
            try policy.check(source)
            return source
        } catch let error as GitError {
            throw APIError.unprocessable(
                "Buildpack '\(display(entry))' must be the name of an admin buildpack or an https git URL: \(error.message)")
        }
    }

    static func checkShape(_ entries: [String]) throws {
        guard entries.count <= maxNamed else { throw APIError.unprocessable("Buildpacks holds at most \(maxNamed) entries") }
        for entry in entries {
            guard !entry.isEmpty, entry.utf8.count <= 4096,
                  !entry.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) || $0 == " " })
            else {
                throw APIError.unprocessable(
                    "Buildpack '\(display(String(entry.prefix(256))))' must be a name or URL without spaces or control characters")
            }
        }
    }

    /// What an app stores for the buildpacks it names.
    struct Named: Sendable {
        /// Names as given, URLs with credentials redacted (`apps.buildpacks`, shown by the API).
        var display: [String]
        /// The entries as given, sealed, when one of them carries credentials.
        var sealed: String?
    }

    /// Checks every entry (an existing admin buildpack's name or an acceptable git URL).
    static func validate(_ conn: PostgresConnection, _ entries: [String], box: SecretBox, policy: GitURLPolicy) throws -> Named {
        try checkShape(entries)
        var display: [String] = []
        var secret = false
        for entry in entries {
            if try conn.query("SELECT 1 FROM buildpacks WHERE name = $1", [entry]).first != nil {
                display.append(entry)
                continue
            }
            let source = try userSource(entry, policy: policy)
            secret = secret || source.url.hasCredentials
            display.append(source.url.hasCredentials ? source.description : entry)
        }
        let sealed = secret ? try box.seal(String(decoding: try JSONEncoder().encode(entries), as: UTF8.self)) : nil
        return Named(display: display, sealed: sealed)
    }

    /// The app's buildpacks as the user gave them (unsealed when one carries credentials).
    static func appEntries(_ row: PostgresRow, box: SecretBox) throws -> [String] {
        guard let sealed = try row.decode("buildpacks_sealed", as: String?.self) else {
            return try row.decode("buildpacks", as: [String].self)
        }
        do {
            return try JSONDecoder().decode([String].self, from: Data(try box.open(sealed).utf8))
        } catch {
            throw APIError.unprocessable("The app's buildpacks cannot be read (was the token signing key changed?): set them again")
        }
    }

    /// The buildpacks of a build.
    struct Resolution: Sendable {
        var buildpacks: [StagingBuildpack]
        /// What the build's `lifecycle.data.buildpacks` shows (empty when detecting).
        var display: [String]
        var detect: Bool
    }

    /// Named entries in order, each an enabled admin buildpack for `stack` (trusted) or a user
    /// git URL; none named: every enabled admin buildpack for `stack` (or for any stack) in
    /// position order, to detect from.
    static func resolve(_ conn: PostgresConnection, named: [String], stack: String, box: SecretBox, policy: GitURLPolicy) throws -> Resolution {
        func unseal(_ row: PostgresRow) throws -> StagingBuildpack {
            let name = try row.decode("name", as: String.self)
            let url: String
            do {
                url = try box.open(try row.decode("url_sealed", as: String.self))
            } catch {
                throw APIError.unprocessable("The URL of buildpack '\(name)' cannot be read (was the token signing key changed?)")
            }
            return StagingBuildpack(name: name, url: url, displayURL: try row.decode("url_display"), trusted: true)
        }
        guard !named.isEmpty else {
            let rows = try conn.query(
                """
                SELECT name, url_display, url_sealed FROM buildpacks
                WHERE enabled AND (stack IS NULL OR stack = $1) ORDER BY position, id
                """, [stack])
            return Resolution(buildpacks: try rows.map(unseal), display: [], detect: true)
        }
        try checkShape(named)
        var buildpacks: [StagingBuildpack] = []
        var display: [String] = []
        for entry in named {
            if let row = try conn.query(
                "SELECT name, enabled, stack, url_display, url_sealed FROM buildpacks WHERE name = $1", [entry]).first {
                guard try row.decode("enabled", as: Bool.self) else { throw APIError.unprocessable("Buildpack '\(entry)' is disabled") }
                if let own = try row.decode("stack", as: String?.self), own != stack {
                    throw APIError.unprocessable("Buildpack '\(entry)' is for stack '\(own)', not '\(stack)'")
                }
                buildpacks.append(try unseal(row))
                display.append(entry)
                continue
            }
            let source = try userSource(entry, policy: policy)
            let shown = source.url.hasCredentials ? source.description : entry
            buildpacks.append(StagingBuildpack(name: nil, url: entry, displayURL: source.description, trusted: false))
            display.append(shown)
        }
        return Resolution(buildpacks: buildpacks, display: display, detect: false)
    }

    /// Replaces the credentials of the build's URLs wherever they appear in `text` (what a
    /// stager reports back), in case a buildpack or git printed them.
    static func scrub(_ text: String, _ buildpacks: [StagingBuildpack]) -> String {
        var text = text
        for buildpack in buildpacks where buildpack.url != buildpack.displayURL {
            text = text.replacingOccurrences(of: buildpack.url, with: buildpack.displayURL)
            for secret in secrets(of: buildpack.url) { text = text.replacingOccurrences(of: secret, with: "***") }
        }
        return text
    }

    /// The userinfo of a URL, its parts and their decoded forms (3 characters or more).
    static func secrets(of url: String) -> [String] {
        guard let scheme = url.range(of: "://") else { return [] }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return [] }
        let userInfo = String(rest[..<at])
        var out = [userInfo]
        out += userInfo.split(separator: ":", maxSplits: 1).map(String.init)
        out += out.compactMap { $0.removingPercentEncoding }
        return Array(Set(out.filter { $0.count >= 3 })).sorted { $0.count > $1.count }
    }
}
