/// What to check out from a repository: the URL fragment of a git source.
public enum GitRef: Sendable, Hashable, CustomStringConvertible {
    /// No fragment: the remote's default branch (what its `HEAD` points at).
    case defaultBranch
    /// A branch or tag name (`main`, `v1.2.0`), a full ref (`refs/tags/v1`), or an abbreviated
    /// commit id (7–39 hex digits) that is used as one only when no branch or tag has that name.
    ///
    /// The value is untrusted data; it is validated with git's ref-name rules before use and
    /// an invalid name is reported exactly like a ref the remote does not have.
    case named(String)
    /// A full 40-hex commit id, lower-cased. Pinning a commit defeats repo-jacking (C9).
    case commit(String)

    /// Interprets a URL fragment: empty → default branch, 40 hex digits → commit, else a name.
    public init(fragment: String) {
        if fragment.isEmpty {
            self = .defaultBranch
        } else if fragment.count == 40, fragment.allSatisfy(\.isHexDigit), fragment.allSatisfy(\.isASCII) {
            self = .commit(fragment.lowercased())
        } else {
            self = .named(fragment)
        }
    }

    /// Whether a named ref could also be read as an abbreviated commit id.
    var couldBeAbbreviatedCommit: Bool {
        guard case .named(let name) = self else { return false }
        return (7...39).contains(name.count) && name.allSatisfy { $0.isASCII && $0.isHexDigit }
    }

    /// The fragment as it would be written after `#` (control characters escaped).
    public var description: String {
        switch self {
        case .defaultBranch: ""
        case .named(let name): GitURL.safeForDisplay(name)
        case .commit(let id): id
        }
    }
}
