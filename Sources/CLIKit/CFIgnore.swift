import Foundation

/// `.cfignore` rules (gitignore syntax): `*`, `?`, `**`, a trailing `/` for directories only, a
/// leading (or inner) `/` anchoring to the app root, `!` re-including; the last matching rule wins.
public struct CFIgnore: Sendable {
    struct Rule: @unchecked Sendable {
        var negated: Bool
        var directoryOnly: Bool
        var regex: NSRegularExpression
    }

    /// What the cf CLI always leaves out.
    public static let defaults = [".cfignore", "/manifest.yml", ".gitignore", ".git", ".hg", ".svn", "_darcs", ".DS_Store"]

    let rules: [Rule]

    /// Rules from `.cfignore` text, after CF's defaults.
    public init(_ text: String = "") {
        var rules: [Rule] = []
        for raw in Self.defaults + text.split(whereSeparator: \.isNewline).map(String.init) {
            var line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            var negated = false
            if line.hasPrefix("!") { negated = true; line.removeFirst() }
            var directoryOnly = false
            if line.hasSuffix("/") { directoryOnly = true; line.removeLast() }
            guard !line.isEmpty else { continue }
            let anchored = line.contains("/")
            if line.hasPrefix("/") { line.removeFirst() }
            let body = Self.regexBody(line)
            let pattern = anchored ? "^\(body)$" : "^(?:.*/)?\(body)$"
            guard let regex = try? NSRegularExpression(pattern: pattern) else { continue }
            rules.append(Rule(negated: negated, directoryOnly: directoryOnly, regex: regex))
        }
        self.rules = rules
    }

    static func regexBody(_ glob: String) -> String {
        var out = ""
        let chars = Array(glob)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "*" {
                if i + 1 < chars.count, chars[i + 1] == "*" {
                    // `**/` matches zero or more directories; a trailing `**` everything below.
                    if i + 2 < chars.count, chars[i + 2] == "/" { out += "(?:.*/)?"; i += 3; continue }
                    out += ".*"; i += 2; continue
                }
                out += "[^/]*"
            } else if c == "?" {
                out += "[^/]"
            } else {
                out += NSRegularExpression.escapedPattern(for: String(c))
            }
            i += 1
        }
        return out
    }

    /// Is `path` (relative to the app root, `/`-separated) left out? Directories that are left
    /// out take everything below them along (the walk never enters them).
    public func ignores(_ path: String, isDirectory: Bool) -> Bool {
        var ignored = false
        let range = NSRange(path.startIndex..., in: path)
        for rule in rules where !rule.directoryOnly || isDirectory {
            if rule.regex.firstMatch(in: path, range: range) != nil { ignored = !rule.negated }
        }
        return ignored
    }
}
