import Foundation
import Yams

/// The platform's YAML configuration file with environment overrides.
///
/// Every key `section.key` can be overridden by the environment variable
/// `CFLIKE_<SECTION>_<KEY>` (upper case), so the same file serves every host and tests can
/// change one value without writing a file. Relative paths resolve against `home`.
public struct ConfigDocument: Sendable {
    /// Values as read from YAML, flattened to "section.key" -> scalar text.
    private let values: [String: String]
    private let environment: [String: String]
    /// The directory relative paths resolve against (`platform.home`, default: the parent of
    /// the config file's directory, i.e. the repository root for `config/cf-like.yaml`).
    public let home: URL
    /// Where the document was read from, when it came from a file.
    public let path: String?

    /// Reads and flattens a YAML document; `path` nil means an empty document (defaults only).
    public init(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        var flat: [String: String] = [:]
        if let path {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigError("cannot read configuration file \(path): \(error.localizedDescription)")
            }
            let node: Any?
            do {
                node = try Yams.load(yaml: text)
            } catch {
                throw ConfigError("configuration file \(path) is not valid YAML: \(error)")
            }
            if let node {
                guard let top = node as? [String: Any] else {
                    throw ConfigError("configuration file \(path): the top level must be a mapping of sections")
                }
                for (section, body) in top {
                    guard let keys = body as? [String: Any] else {
                        if body is NSNull { continue }
                        throw ConfigError("configuration file \(path): section '\(section)' must be a mapping")
                    }
                    for (key, value) in keys {
                        flat["\(section).\(key)"] = Self.scalarText(value)
                    }
                }
            }
        }
        self.values = flat
        self.environment = environment
        self.path = path
        let defaultHome: URL
        if let path {
            defaultHome = URL(fileURLWithPath: path).standardizedFileURL
                .deletingLastPathComponent().deletingLastPathComponent()
        } else {
            defaultHome = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        }
        let homeKey = "platform.home"
        if let override = environment[Self.environmentName(homeKey)] ?? flat[homeKey], !override.isEmpty {
            self.home = URL(fileURLWithPath: override, relativeTo: defaultHome).standardizedFileURL
        } else {
            self.home = defaultHome
        }
    }

    /// The environment variable that overrides `key` ("controller.listen" -> CFLIKE_CONTROLLER_LISTEN).
    public static func environmentName(_ key: String) -> String {
        "CFLIKE_" + key.uppercased().replacingOccurrences(of: ".", with: "_").replacingOccurrences(of: "-", with: "_")
    }

    /// The raw text of a key after environment overrides, nil when unset.
    public func raw(_ key: String) -> String? {
        if let value = environment[Self.environmentName(key)] { return value }
        return values[key]
    }

    /// A string value, or the default.
    public func string(_ key: String, default defaultValue: String) -> String {
        raw(key) ?? defaultValue
    }

    /// An integer value within bounds, or the default; anything else is a configuration error naming the key.
    public func int(_ key: String, default defaultValue: Int, range: ClosedRange<Int>? = nil) throws -> Int {
        guard let text = raw(key) else { return defaultValue }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw ConfigError("\(key) (\(Self.environmentName(key))) must be an integer, got '\(text)'")
        }
        if let range, !range.contains(value) {
            throw ConfigError("\(key) (\(Self.environmentName(key))) must be within \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
        return value
    }

    /// A boolean value (true/false/yes/no/1/0), or the default.
    public func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let text = raw(key)?.lowercased() else { return defaultValue }
        switch text {
        case "true", "yes", "1", "on": return true
        case "false", "no", "0", "off": return false
        default: throw ConfigError("\(key) (\(Self.environmentName(key))) must be true or false, got '\(text)'")
        }
    }

    /// A path value resolved against `home`.
    public func path(_ key: String, default defaultValue: String) -> String {
        resolve(string(key, default: defaultValue))
    }

    /// Resolves a possibly relative path against `home`.
    public func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return home.appendingPathComponent(path).standardizedFileURL.path
    }

    /// `host:port` listen addresses; the host may be a name or an IPv4 address.
    public func hostPort(_ key: String, default defaultValue: String) throws -> (host: String, port: Int) {
        let text = string(key, default: defaultValue)
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port), colon != text.startIndex
        else {
            throw ConfigError("\(key) (\(Self.environmentName(key))) must be host:port, got '\(text)'")
        }
        return (String(text[..<colon]), port)
    }

    /// Reads a secret from a file (trimmed); the message names the key, never the content.
    public func secret(fileKey: String, default defaultValue: String) throws -> String {
        let file = path(fileKey, default: defaultValue)
        guard let data = FileManager.default.contents(atPath: file),
              let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              !text.isEmpty
        else {
            throw ConfigError("\(fileKey): cannot read a non-empty secret from \(file) (run ops/up, or set \(Self.environmentName(fileKey)))")
        }
        return text
    }

    private static func scalarText(_ value: Any) -> String {
        switch value {
        case let s as String: return s
        case let b as Bool: return b ? "true" : "false"
        case let i as Int: return String(i)
        case let d as Double: return String(d)
        case is NSNull: return ""
        default: return "\(value)"
        }
    }
}

/// A configuration problem, with a message that names the key at fault.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ message: String) { self.description = message }
}
