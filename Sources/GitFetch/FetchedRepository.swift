/// A checked-out commit in the fetch cache.
public struct FetchedRepository: Sendable, Hashable {
    /// The full 40-hex id of the checked-out commit (annotated tags are peeled).
    public let commit: String
    /// Absolute path of the working tree (`<cacheDir>/<url hash>/<commit>`). Shared by later
    /// fetches of the same commit: callers must copy it, not modify it.
    public let directory: String
    /// Whether the directory was already in the cache (nothing was downloaded).
    public let fromCache: Bool

    /// Creates a result.
    public init(commit: String, directory: String, fromCache: Bool) {
        self.commit = commit
        self.directory = directory
        self.fromCache = fromCache
    }
}
