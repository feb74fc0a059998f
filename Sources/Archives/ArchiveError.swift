/// Errors of the Archives module: what went wrong, which entry, and libarchive's own words.
///
/// `description` reads `kind: message (entry: name) (cause: ...)`; callers map `kind` to their
/// own error vocabulary (an invalid upload is a 4xx, an `.io` failure on the host is not).
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    /// The class of failure; extensible like a code, compared with `==`.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// Short stable name, suitable for logs and metrics labels.
        public let rawValue: String
        /// Creates a kind; prefer the predefined ones.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The archive is corrupt, truncated, empty or not an archive (A13).
        public static let invalidArchive = Kind("invalidArchive")
        /// An entry name is absolute, has `..`, bad characters or invalid UTF-8 (A1, A2, A10).
        public static let unsafePath = Kind("unsafePath")
        /// A symlink or hardlink points outside the root, or an entry would go through a link (A3, A4, A6).
        public static let unsafeLink = Kind("unsafeLink")
        /// Device nodes, FIFOs, sockets, or symlinks when they are not allowed (A7).
        public static let unsupportedEntryType = Kind("unsupportedEntryType")
        /// A second entry for a path already extracted, or a file where a directory is (A11).
        public static let duplicateEntry = Kind("duplicateEntry")
        /// A size, count, ratio, path length or depth cap was exceeded (A9, A10).
        public static let limitExceeded = Kind("limitExceeded")
        /// The host filesystem failed us (destination not empty, disk full, permission).
        public static let io = Kind("io")
        /// Any other libarchive failure, with its message.
        public static let library = Kind("library")
    }

    /// The class of failure.
    public var kind: Kind
    /// What went wrong, with the library's own words where it gave any.
    public var message: String
    /// The archive entry at fault, as named in the archive (lossy-decoded if not UTF-8).
    public var entry: String?
    /// A lower-level cause (errno text, libarchive message), when separate from `message`.
    public var cause: String?

    /// Renders as `kind: message (entry: x) (cause: y)`.
    public var description: String {
        var text = "\(kind): \(message)"
        if let entry { text += " (entry: \(ArchiveError.quoted(entry)))" }
        if let cause { text += " (cause: \(cause))" }
        return text
    }

    /// Creates an error of kind `.library` with just a message (kept for existing callers).
    public init(_ message: String) {
        self.init(.library, message)
    }

    /// Creates an error of a given kind, optionally naming the entry and a cause.
    public init(_ kind: Kind, _ message: String, entry: String? = nil, cause: String? = nil) {
        self.kind = kind
        self.message = message
        self.entry = entry
        self.cause = cause
    }

    /// Quotes an entry name for messages so newlines and control characters stay visible.
    static func quoted(_ name: String) -> String {
        var out = "'"
        for scalar in name.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            case "'": out += "\\'"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "'"
    }
}
