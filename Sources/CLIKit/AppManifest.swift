import Foundation
import Yams

/// One application of a CF `manifest.yml`, reduced to the attributes `push` applies.
public struct AppManifest: Equatable, Sendable {
    public var name: String?
    public var path: String?
    public var memoryMB: Int?
    public var diskMB: Int?
    public var instances: Int?
    public var buildpacks: [String]?
    public var command: String?
    public var env: [String: String] = [:]
    public var routes: [String] = []
    public var noRoute = false
    public var healthCheckType: String?
    public var healthCheckEndpoint: String?
    public var timeout: Int?
    /// The manifest's `processes:` entries, applied after staging.
    public var processes: [ProcessSettings] = []

    public init() {}

    /// One entry of a manifest's `processes:` (CF attributes per process type).
    public struct ProcessSettings: Equatable, Sendable {
        public var type: String
        public var instances: Int?
        public var memoryMB: Int?
        public var diskMB: Int?
        public var command: String?
        public var healthCheckType: String?
        public var healthCheckEndpoint: String?
        public var timeout: Int?

        public init(type: String) { self.type = type }

        /// Whether the entry changes the command or the health check (a process update).
        var updatesProcess: Bool { command != nil || healthCheckType != nil || healthCheckEndpoint != nil || timeout != nil }
        /// Whether the entry changes instances, memory or disk (a scale).
        var scales: Bool { instances != nil || memoryMB != nil || diskMB != nil }
    }

    /// Replaces every `((name))` with its value; a missing variable is an error naming it, as in CF.
    public static func substitute(_ text: String, vars: [String: String]) throws -> String {
        var out = ""
        var missing: [String] = []
        var rest = Substring(text)
        while let open = rest.range(of: "((") {
            out += rest[rest.startIndex..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "))") else { rest = rest[open.lowerBound...]; break }
            let name = String(rest[open.upperBound..<close.lowerBound]).trimmingCharacters(in: .whitespaces)
            if let value = vars[name] {
                out += value
            } else {
                if !missing.contains(name) { missing.append(name) }
                out += rest[open.lowerBound..<close.upperBound]
            }
            rest = rest[close.upperBound...]
        }
        out += rest
        guard missing.isEmpty else { throw CLIError.usage("Expected to find variables: \(missing.joined(separator: ", "))") }
        return out
    }

    /// Parses a manifest's text (after `((var))` substitution) into its applications.
    public static func parse(_ text: String, vars: [String: String] = [:]) throws -> [AppManifest] {
        let yaml = try substitute(text, vars: vars)
        let root: Any?
        do {
            root = try Yams.load(yaml: yaml)
        } catch {
            throw CLIError.usage("the manifest is not valid YAML: \(error)")
        }
        guard let document = root as? [String: Any], let apps = document["applications"] as? [[String: Any]] else {
            throw CLIError.usage("the manifest needs an 'applications' list")
        }
        return try apps.map(parseApp)
    }

    static func parseApp(_ a: [String: Any]) throws -> AppManifest {
        var m = AppManifest()
        m.name = a["name"].map { "\($0)" }
        m.path = a["path"].map { "\($0)" }
        if let v = a["memory"] { m.memoryMB = try megabytes("\(v)", field: "memory") }
        if let v = a["disk_quota"] { m.diskMB = try megabytes("\(v)", field: "disk_quota") }
        if let v = a["instances"] {
            guard let n = Int("\(v)"), n >= 0 else { throw CLIError.usage("instances must be a whole number, not '\(v)'") }
            m.instances = n
        }
        if let list = a["buildpacks"] as? [Any] { m.buildpacks = list.map { "\($0)" } }
        else if let one = a["buildpack"] { m.buildpacks = ["\(one)"] }
        m.command = a["command"].map { "\($0)" }
        if let env = a["env"] as? [String: Any] {
            for (k, v) in env { m.env[k] = v is NSNull ? "" : "\(v)" }
        }
        if let routes = a["routes"] as? [[String: Any]] { m.routes = routes.compactMap { $0["route"].map { "\($0)" } } }
        if let v = a["no-route"] { m.noRoute = (v as? Bool) ?? ("\(v)" == "true") }
        m.healthCheckType = a["health-check-type"].map { "\($0)" }
        m.healthCheckEndpoint = a["health-check-http-endpoint"].map { "\($0)" }
        if let v = a["timeout"] {
            guard let n = Int("\(v)"), n > 0 else { throw CLIError.usage("timeout must be a number of seconds, not '\(v)'") }
            m.timeout = n
        }
        if let v = a["processes"] {
            guard let list = v as? [[String: Any]] else { throw CLIError.usage("processes must be a list of entries with a type") }
            m.processes = try list.map(parseProcess)
            var seen: Set<String> = []
            for p in m.processes where !seen.insert(p.type).inserted {
                throw CLIError.usage("processes lists the type '\(p.type)' more than once")
            }
        }
        return m
    }

    static func parseProcess(_ a: [String: Any]) throws -> ProcessSettings {
        guard let typeValue = a["type"] else { throw CLIError.usage("every entry of processes needs a type") }
        let type = "\(typeValue)"
        guard (1...255).contains(type.count), type.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw CLIError.usage("process type '\(type)' must be letters, digits, - and _")
        }
        var p = ProcessSettings(type: type)
        if let v = a["instances"] {
            guard let n = Int("\(v)"), n >= 0 else { throw CLIError.usage("processes[\(type)].instances must be a whole number, not '\(v)'") }
            p.instances = n
        }
        if let v = a["memory"] { p.memoryMB = try megabytes("\(v)", field: "processes[\(type)].memory") }
        if let v = a["disk_quota"] { p.diskMB = try megabytes("\(v)", field: "processes[\(type)].disk_quota") }
        p.command = a["command"].map { "\($0)" }
        if let v = a["health-check-type"] {
            guard ["port", "http", "process"].contains("\(v)") else {
                throw CLIError.usage("processes[\(type)].health-check-type must be port, http or process, not '\(v)'")
            }
            p.healthCheckType = "\(v)"
        }
        if let v = a["health-check-http-endpoint"] {
            guard "\(v)".hasPrefix("/") else {
                throw CLIError.usage("processes[\(type)].health-check-http-endpoint must start with '/', not '\(v)'")
            }
            p.healthCheckEndpoint = "\(v)"
        }
        if let v = a["timeout"] {
            guard let n = Int("\(v)"), n > 0 else { throw CLIError.usage("processes[\(type)].timeout must be a number of seconds, not '\(v)'") }
            p.timeout = n
        }
        return p
    }

    /// The `processes:` entries with what flags set for web taken out of web's entry (flags win).
    public func processes(overriddenBy flags: AppManifest) -> [ProcessSettings] {
        processes.map { entry in
            guard entry.type == "web" else { return entry }
            var p = entry
            if flags.instances != nil { p.instances = nil }
            if flags.memoryMB != nil { p.memoryMB = nil }
            if flags.diskMB != nil { p.diskMB = nil }
            if flags.command != nil { p.command = nil }
            if flags.healthCheckType != nil { p.healthCheckType = nil }
            if flags.healthCheckEndpoint != nil { p.healthCheckEndpoint = nil }
            if flags.timeout != nil { p.timeout = nil }
            return p
        }
    }

    /// `256M`, `1G`, `512MB`, `1024` (megabytes) to megabytes.
    public static func megabytes(_ text: String, field: String) throws -> Int {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        var digits = t
        var factor = 1
        for (suffix, f) in [("GB", 1024), ("MB", 1), ("G", 1024), ("M", 1)] where t.hasSuffix(suffix) {
            digits = String(t.dropLast(suffix.count)); factor = f; break
        }
        guard let n = Int(digits), n > 0 else { throw CLIError.usage("\(field) must be a size like 256M or 1G, not '\(text)'") }
        return n * factor
    }

    /// Applies `other`'s set values over this one's (flags over the manifest).
    public func overridden(by other: AppManifest) -> AppManifest {
        var m = self
        if let v = other.name { m.name = v }
        if let v = other.path { m.path = v }
        if let v = other.memoryMB { m.memoryMB = v }
        if let v = other.diskMB { m.diskMB = v }
        if let v = other.instances { m.instances = v }
        if let v = other.buildpacks, !v.isEmpty { m.buildpacks = v }
        if let v = other.command { m.command = v }
        m.env.merge(other.env) { _, new in new }
        if !other.routes.isEmpty { m.routes = other.routes }
        if other.noRoute { m.noRoute = true }
        if let v = other.healthCheckType { m.healthCheckType = v }
        if let v = other.healthCheckEndpoint { m.healthCheckEndpoint = v }
        if let v = other.timeout { m.timeout = v }
        if !other.processes.isEmpty { m.processes = other.processes }
        return m
    }

    /// Picks the application `push` works on: the named one, or the only one (renamed by `name`).
    public static func select(_ apps: [AppManifest], name: String?) throws -> AppManifest {
        if let name {
            if let found = apps.first(where: { $0.name == name }) { return found }
            if apps.count == 1 { var only = apps[0]; only.name = name; return only }
            throw CLIError.usage("the manifest has no application named '\(name)'")
        }
        guard apps.count == 1 else {
            throw CLIError.usage("the manifest lists \(apps.count) applications; name the one to push")
        }
        return apps[0]
    }
}
