import Foundation
import Yams

/// What a buildpack's `bin/release` and the app's `Procfile` say about process types.
struct ReleaseInfo: Equatable {
    /// `default_process_types` from `bin/release`.
    var defaultProcessTypes: [String: String]

    /// Nodes visited at most while reading the YAML: an alias bomb (SECURITY C11) expands
    /// exponentially when walked, so the walk stops long before that matters.
    static let nodeBudget = 10_000

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses `bin/release` output. Empty output means no process types; anything else must be
    /// a YAML mapping whose `default_process_types`, if present, maps names to command strings.
    static func parse(_ data: Data) throws -> ReleaseInfo {
        guard data.count <= Lifecycle.maxReleaseBytes else {
            throw Invalid(description: "bin/release printed more than \(Lifecycle.maxReleaseBytes) bytes")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Invalid(description: "bin/release printed text that is not UTF-8")
        }
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return ReleaseInfo(defaultProcessTypes: [:]) }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw Invalid(description: "bin/release printed invalid YAML: \(Self.firstLine(of: error))")
        }
        guard let node else { return ReleaseInfo(defaultProcessTypes: [:]) }
        if case .scalar(let scalar) = node, scalar.tag == Tag(.null) || scalar.string.isEmpty || scalar.string == "~" {
            return ReleaseInfo(defaultProcessTypes: [:])  // `---` alone: an empty document
        }
        var budget = nodeBudget
        try spend(node, &budget)
        guard let mapping = node.mapping else {
            throw Invalid(description: "bin/release must print a YAML mapping (with default_process_types)")
        }
        var types: [String: String] = [:]
        if let value = mapping["default_process_types"] {
            if case .scalar(let scalar) = value, scalar.tag == Tag(.null) || scalar.string.isEmpty || scalar.string == "~" {
                return ReleaseInfo(defaultProcessTypes: [:])
            }
            guard let entries = value.mapping else {
                throw Invalid(description: "default_process_types in bin/release's output must be a mapping of process type to command")
            }
            for (key, command) in entries {
                guard let name = key.scalar?.string, isValidType(name) else {
                    throw Invalid(description: "default_process_types has an invalid process type name")
                }
                guard let text = command.scalar?.string else {
                    throw Invalid(description: "default_process_types.\(name) must be a command string")
                }
                types[name] = text
            }
        }
        return ReleaseInfo(defaultProcessTypes: types)
    }

    /// Walks the node tree, failing once more than `budget` nodes were visited.
    private static func spend(_ node: Node, _ budget: inout Int) throws {
        budget -= 1
        guard budget >= 0 else {
            throw Invalid(description: "bin/release printed YAML too large to read (more than \(nodeBudget) nodes, counting aliases)")
        }
        switch node {
        case .scalar, .alias:
            return
        case .mapping(let mapping):
            for (key, value) in mapping {
                try spend(key, &budget)
                try spend(value, &budget)
            }
        case .sequence(let sequence):
            for item in sequence { try spend(item, &budget) }
        }
    }

    /// Process type names: letters, digits, `_` and `-`, 1–63 characters.
    static func isValidType(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 63
            && name.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" }
    }

    /// `Procfile` lines `type: command` (blank lines and `#` comments skipped). Invalid lines
    /// are reported so the staging log can name them.
    static func parseProcfile(_ data: Data) -> (types: [String: String], invalidLines: [Int]) {
        var types: [String: String] = [:]
        var invalid: [Int] = []
        let text = String(decoding: data, as: UTF8.self)
        for (number, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                invalid.append(number + 1)
                continue
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let command = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard isValidType(name), !command.isEmpty else {
                invalid.append(number + 1)
                continue
            }
            types[name] = command
        }
        return (types, invalid)
    }

    private static func firstLine(of error: any Error) -> String {
        String(String(describing: error).split(separator: "\n").first ?? "").prefix(200).description
    }
}

/// `staging_info.yml` as CF writes it (JSON is YAML): the winning buildpack and the web command.
struct StagingInfo: Codable, Equatable {
    var detectedBuildpack: String
    var startCommand: String

    enum CodingKeys: String, CodingKey { case detectedBuildpack = "detected_buildpack", startCommand = "start_command" }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
