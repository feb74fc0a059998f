/// Which remotes a fetch may contact (SECURITY.md 2C: C1–C3).
///
/// `https://` is always allowed. Plain-text and ssh transports are refused unless enabled,
/// either everywhere or for listed hosts (a test server on 127.0.0.1, an internal mirror).
/// Local sources (`file://`, paths) are not a policy matter: only trusted sources may use them.
public struct GitURLPolicy: Sendable, Hashable {
    /// Allow `http://` to any host.
    public var allowHTTP: Bool
    /// Allow `git://` (unauthenticated daemon protocol) to any host.
    public var allowGitProtocol: Bool
    /// Allow `ssh://` and scp-like URLs to any host (host keys must still be pinned).
    public var allowSSH: Bool
    /// Hosts (`host` or `host:port`, lower case) where `http`, `git` and `ssh` are allowed even
    /// when the flags above are off.
    public var insecureHostAllowList: Set<String>
    /// When set, no host outside this list (`host` or `host:port`) is contacted, whatever the scheme.
    public var hostAllowList: Set<String>?
    /// Pinned SSH host keys: host → fingerprints as printed by `ssh-keygen -lf`
    /// (`SHA256:<base64>`). An ssh host with no pin is refused when connecting (C2).
    public var sshHostKeyFingerprints: [String: Set<String>]
    /// Follow an HTTP redirect on the initial request. Off by default: a redirect leads to a
    /// host and scheme this policy never checked.
    public var followRedirects: Bool

    /// Creates a policy; the default allows https only.
    public init(
        allowHTTP: Bool = false,
        allowGitProtocol: Bool = false,
        allowSSH: Bool = false,
        insecureHostAllowList: Set<String> = [],
        hostAllowList: Set<String>? = nil,
        sshHostKeyFingerprints: [String: Set<String>] = [:],
        followRedirects: Bool = false
    ) {
        self.allowHTTP = allowHTTP
        self.allowGitProtocol = allowGitProtocol
        self.allowSSH = allowSSH
        self.insecureHostAllowList = insecureHostAllowList
        self.hostAllowList = hostAllowList
        self.sshHostKeyFingerprints = sshHostKeyFingerprints
        self.followRedirects = followRedirects
    }

    /// https only, any host, no redirects.
    public static let `default` = GitURLPolicy()

    /// Throws a `notAllowed` error when the source may not be fetched under this policy.
    public func check(_ source: GitSource) throws {
        let url = source.url
        if url.isLocal {
            guard source.trusted else {
                throw GitError(.notAllowed, "local repository '\(url.redacted)' refused: only administrator-registered sources may use file:// URLs or paths")
            }
            return
        }
        let names = hostNames(url)
        if let hostAllowList, hostAllowList.isDisjoint(with: names) {
            throw GitError(.notAllowed, "host of '\(url.redacted)' is not in the allowed host list")
        }
        let listed = !insecureHostAllowList.isDisjoint(with: names)
        switch url.scheme {
        case .https:
            return
        case .http where allowHTTP || listed, .git where allowGitProtocol || listed, .ssh where allowSSH || listed:
            return
        default:
            throw GitError(.notAllowed, "'\(url.redacted)' refused: \(url.scheme.rawValue) URLs are not allowed (use https)")
        }
    }

    /// The names a host may be listed under: `host` and `host:port`.
    func hostNames(_ url: GitURL) -> Set<String> {
        guard let host = url.host else { return [] }
        var names: Set<String> = [host]
        if let port = url.port { names.insert("\(host):\(port)") }
        return names
    }
}
