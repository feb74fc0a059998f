/// A git repository to fetch: URL, ref and whether an administrator vouched for it.
///
/// Printing a source (description, debug description, `dump`) shows the redacted URL only.
public struct GitSource: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Where the repository lives.
    public let url: GitURL
    /// Which ref to check out.
    public let ref: GitRef
    /// Registered by an administrator: only trusted sources may use `file://` URLs or local
    /// paths (C1), since those read the host's file system.
    public let trusted: Bool

    /// Creates a source from parts.
    public init(url: GitURL, ref: GitRef = .defaultBranch, trusted: Bool = false) {
        self.url = url
        self.ref = ref
        self.trusted = trusted
    }

    /// Parses `URL`, `URL#branch`, `URL#tag` or `URL#<commit id>`.
    ///
    /// Only the URL is validated here; the fragment is kept as data and checked at fetch time,
    /// so a malformed ref fails the same way as a missing one.
    public init(parsing text: String, trusted: Bool = false) throws {
        let parts = text.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        let url = try GitURL(parsing: String(parts[0]))
        let ref = parts.count == 2 ? GitRef(fragment: String(parts[1])) : .defaultBranch
        self.init(url: url, ref: ref, trusted: trusted)
    }

    /// The redacted URL plus `#ref` when a ref was given.
    public var description: String {
        ref == .defaultBranch ? url.redacted : "\(url.redacted)#\(ref)"
    }
    public var debugDescription: String { "GitSource(\(description)\(trusted ? ", trusted" : ""))" }
    /// Reflection shows only redacted text so `dump()` cannot reveal credentials.
    public var customMirror: Mirror {
        Mirror(self, children: ["source": description, "trusted": trusted], displayStyle: .struct)
    }
}
