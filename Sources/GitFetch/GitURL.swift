/// A parsed git remote URL whose credentials can never be printed by accident.
///
/// `description`, `debugDescription` and the reflection mirror (used by `dump`, `print` of
/// containers and string interpolation) all show the `redacted` form; the userinfo is only
/// handed to libgit2 through the credentials callback, never put into the URL it sees.
public struct GitURL: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// How the repository is reached.
    public enum Scheme: String, Sendable, Hashable {
        /// `https://` (always allowed by the policy).
        case https
        /// `http://` (plain text; refused unless the policy allows it).
        case http
        /// `ssh://` or the scp-like `user@host:path` form.
        case ssh
        /// `git://` (unauthenticated daemon protocol).
        case git
        /// `file://` URL (only for trusted sources).
        case file
        /// A plain absolute path (only for trusted sources).
        case localPath
    }

    /// How the repository is reached.
    public let scheme: Scheme
    /// Lower-cased host name, IPv4 or bracketed IPv6 literal; nil for local sources.
    public let host: String?
    /// Explicit port, if the URL gave one.
    public let port: Int?
    /// The path part (for scp-like URLs, what follows the colon).
    public let path: String
    /// Whether the URL is in scp-like `user@host:path` form.
    public let isSCPLike: Bool
    /// Userinfo exactly as written (percent-encoded); secret, never printed.
    let userInfo: String?

    /// Whether the URL carries a user name and/or password.
    public var hasCredentials: Bool { userInfo != nil }

    /// Whether this URL points at the local file system.
    public var isLocal: Bool { scheme == .file || scheme == .localPath }

    /// The user name, percent-decoded (not secret for ssh, where it is normally `git`).
    var userName: String? {
        guard let userInfo else { return nil }
        let name = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return name.isEmpty ? nil : Self.percentDecoded(name)
    }

    /// The user-name part as written (percent-encoded), without the password.
    private var rawUserName: String? {
        guard let name = userInfo?.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first,
              !name.isEmpty else { return nil }
        return String(name)
    }

    /// The password, percent-decoded.
    var password: String? {
        guard let userInfo else { return nil }
        let parts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count == 2 ? Self.percentDecoded(String(parts[1])) : nil
    }

    /// Strings that must never appear in output: the raw and decoded userinfo parts (for scrubbing
    /// libgit2 messages as a second line of defence).
    var secrets: [String] {
        guard let userInfo, hidesUserInfo else { return [] }
        var out = [userInfo, Self.percentDecoded(userInfo)]
        if let password, !password.isEmpty { out.append(password) }
        // For http(s) a lone user name is often a token (`https://TOKEN@host/`).
        if scheme != .ssh, let userName { out.append(userName) }
        // Very short strings would mask unrelated text; they are still never printed directly.
        return out.filter { $0.count >= 3 }
    }

    /// Whether printing must hide the userinfo: always, except an ssh user name without a
    /// password (conventionally the public `git@`).
    private var hidesUserInfo: Bool {
        guard userInfo != nil else { return false }
        return !(scheme == .ssh && password == nil)
    }

    private var shownUserInfo: String? {
        guard let userInfo else { return nil }
        return hidesUserInfo ? "***" : userInfo
    }

    private var hostPort: String {
        guard let host else { return "" }
        return port.map { "\(host):\($0)" } ?? host
    }

    /// The URL with any userinfo replaced by `***`, e.g. `https://***@host/repo`.
    public var redacted: String { render(userInfo: shownUserInfo) }

    /// The URL given to libgit2: no credentials for http(s) (they go through the credentials
    /// callback), the user name kept for ssh where the transport needs it.
    var urlForLibgit2: String {
        switch scheme {
        case .ssh: render(userInfo: rawUserName)
        default: render(userInfo: nil)
        }
    }

    /// A credential-free, normalised form used to key the fetch cache.
    var canonical: String {
        let trimmedPath = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        switch scheme {
        case .localPath, .file:
            return "file://" + trimmedPath
        case .ssh:
            let user = userName.map { "\($0)@" } ?? ""
            let separator = isSCPLike ? ":" : ""
            return "ssh://\(user)\(hostPort)\(separator)\(trimmedPath)"
        default:
            let defaultPort = [Scheme.https: 443, .http: 80, .git: 9418][scheme]
            let portPart = port.flatMap { $0 == defaultPort ? nil : ":\($0)" } ?? ""
            return "\(scheme.rawValue)://\(host ?? "")\(portPart)\(trimmedPath)"
        }
    }

    private func render(userInfo: String?) -> String {
        let user = userInfo.map { "\($0)@" } ?? ""
        switch scheme {
        case .localPath: return path
        case .file: return "file://" + path
        case .ssh where isSCPLike: return "\(user)\(hostPort):\(path)"
        default: return "\(scheme.rawValue)://\(user)\(hostPort)\(path)"
        }
    }

    public var description: String { redacted }
    public var debugDescription: String { "GitURL(\(redacted))" }
    /// Reflection shows only the redacted form so `dump()` cannot reveal the userinfo.
    public var customMirror: Mirror { Mirror(self, children: ["redacted": redacted], displayStyle: .struct) }

    /// Parses `https://…`, `http://…`, `ssh://…`, `git://…`, `file://…`, scp-like
    /// `user@host:path`, or an absolute local path. No fragment: split it off first.
    public init(parsing text: String) throws {
        guard !text.isEmpty else { throw GitError(.invalidSource, "empty git URL") }
        // Control characters and spaces are never legitimate in a remote URL; refusing them
        // also keeps log lines and error messages single-line.
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " }) else {
            throw GitError(.invalidSource, "git URL contains spaces or control characters")
        }
        if let range = text.range(of: "://") {
            try self.init(scheme: String(text[..<range.lowerBound]), rest: String(text[range.upperBound...]))
        } else if text.hasPrefix("/") {
            self.init(scheme: .localPath, host: nil, port: nil, path: text, isSCPLike: false, userInfo: nil)
        } else if let scp = try Self.parseSCPLike(text) {
            self = scp
        } else {
            // The text is not echoed: it may hold credentials in a shape we could not parse.
            throw GitError(.invalidSource, "not a git URL or absolute path")
        }
    }

    private init(scheme: Scheme, host: String?, port: Int?, path: String, isSCPLike: Bool, userInfo: String?) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.isSCPLike = isSCPLike
        self.userInfo = userInfo
    }

    private init(scheme rawScheme: String, rest: String) throws {
        let schemeName = rawScheme.lowercased()
        let scheme: Scheme
        switch schemeName {
        case "https": scheme = .https
        case "http": scheme = .http
        case "ssh", "git+ssh", "ssh+git": scheme = .ssh
        case "git": scheme = .git
        case "file": scheme = .file
        default:
            throw GitError(.invalidSource, "unsupported URL scheme '\(Self.safeForDisplay(schemeName))'")
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        let path = String(rest[slash...])
        if scheme == .file {
            // Only the local host makes sense; `file://host/x` would be a UNC-style path.
            guard authority.isEmpty || authority.lowercased() == "localhost" else {
                throw GitError(.invalidSource, "file URL must not name a host")
            }
            guard path.count > 1 else { throw GitError(.invalidSource, "file URL without a path") }
            self.init(scheme: .file, host: nil, port: nil, path: path, isSCPLike: false, userInfo: nil)
            return
        }
        var userInfo: String?
        var hostPart = authority
        if let at = authority.lastIndex(of: "@") {
            userInfo = String(authority[..<at])
            hostPart = String(authority[authority.index(after: at)...])
        }
        let (host, port) = try Self.parseHostPort(hostPart)
        guard path.count > 1 else {
            throw GitError(.invalidSource, "git URL without a repository path: '\(Self.render(scheme, host, port))'")
        }
        self.init(scheme: scheme, host: host, port: port, path: path, isSCPLike: false,
                  userInfo: userInfo?.isEmpty == true ? nil : userInfo)
    }

    private static func render(_ scheme: Scheme, _ host: String, _ port: Int?) -> String {
        "\(scheme.rawValue)://\(host)\(port.map { ":\($0)" } ?? "")"
    }

    /// `[user@]host:path` with no slash before the colon (git's own rule for scp-like syntax).
    private static func parseSCPLike(_ text: String) throws -> GitURL? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let before = text[..<colon]
        guard !before.contains("/") else { return nil }
        var userInfo: String?
        var host = String(before)
        if let at = before.lastIndex(of: "@") {
            userInfo = String(before[..<at])
            host = String(before[before.index(after: at)...])
        }
        let path = String(text[text.index(after: colon)...])
        guard !path.isEmpty else { throw GitError(.invalidSource, "scp-like git URL without a path") }
        guard isValidHostName(host) else { throw GitError(.invalidSource, "invalid host in git URL") }
        return GitURL(scheme: .ssh, host: host.lowercased(), port: nil, path: path, isSCPLike: true,
                      userInfo: userInfo?.isEmpty == true ? nil : userInfo)
    }

    private static func parseHostPort(_ text: String) throws -> (String, Int?) {
        var host = text
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw GitError(.invalidSource, "invalid IPv6 host in git URL") }
            host = String(text[...close])
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw GitError(.invalidSource, "invalid host in git URL") }
                portText = after.dropFirst()
            }
            let inner = host.dropFirst().dropLast()
            guard !inner.isEmpty, inner.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw GitError(.invalidSource, "invalid IPv6 host in git URL")
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
            guard isValidHostName(host) else { throw GitError(.invalidSource, "invalid host in git URL") }
        } else {
            guard isValidHostName(host) else { throw GitError(.invalidSource, "invalid host in git URL") }
        }
        var port: Int?
        if let portText, !portText.isEmpty {
            guard portText.allSatisfy(\.isASCII), let value = Int(portText), (1...65535).contains(value) else {
                throw GitError(.invalidSource, "invalid port in git URL")
            }
            port = value
        }
        return (host.lowercased(), port)
    }

    private static func isValidHostName(_ host: String) -> Bool {
        !host.isEmpty && host.count <= 253 && !host.hasPrefix("-") && !host.hasPrefix(".")
            && host.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-._".unicodeScalars.contains($0)) }
    }

    private static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Escapes control characters and truncates, for echoing user input in messages.
    static func safeForDisplay(_ text: String, limit: Int = 120) -> String {
        let escaped = text.unicodeScalars.map { scalar -> String in
            scalar.properties.generalCategory == .control ? scalar.escaped(asASCII: true) : String(scalar)
        }.joined()
        return escaped.count > limit ? String(escaped.prefix(limit)) + "…" : escaped
    }
}
