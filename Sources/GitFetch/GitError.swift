import Foundation

/// Errors of the GitFetch module.
///
/// Every message is built from redacted URLs only, so printing an error (or its
/// `localizedDescription`) can never reveal credentials embedded in a source URL.
public struct GitError: Error, CustomStringConvertible, CustomDebugStringConvertible, LocalizedError, Sendable {
    /// What kind of failure this is; extensible like an error code.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// Stable short name, e.g. `refNotFound`.
        public let rawValue: String
        /// Creates a kind from its short name.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The source string could not be parsed as a git URL.
        public static let invalidSource = Kind("invalidSource")
        /// The URL's scheme or host is refused by the URL policy or the source is not trusted.
        public static let notAllowed = Kind("notAllowed")
        /// The requested branch, tag or commit does not exist on the remote (or is not a valid ref name).
        public static let refNotFound = Kind("refNotFound")
        /// A fetch limit (time, received bytes, checkout size) was hit.
        public static let limitExceeded = Kind("limitExceeded")
        /// Authentication or host-key verification failed.
        public static let authentication = Kind("authentication")
        /// libgit2 reported an error (network, protocol, repository).
        public static let library = Kind("library")
        /// A local file-system operation failed.
        public static let io = Kind("io")
        /// Anything else.
        public static let other = Kind("other")
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// What went wrong, with the library's own words where it gave any.
    public var message: String
    /// libgit2's return code when the failure came from libgit2.
    public var code: Int32?

    /// `kind: message`.
    public var description: String { "\(kind): \(message)" }
    public var debugDescription: String {
        code.map { "GitError(\(kind), code \($0)): \(message)" } ?? "GitError(\(kind)): \(message)"
    }
    /// Makes `localizedDescription` carry the (redacted) message instead of a generic text.
    public var errorDescription: String? { description }

    /// Creates an error of kind `other`.
    public init(_ message: String) {
        self.init(.other, message)
    }

    /// Creates an error of the given kind.
    public init(_ kind: Kind, _ message: String, code: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.code = code
    }
}
