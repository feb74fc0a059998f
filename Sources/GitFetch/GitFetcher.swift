import CLibGit2
import Foundation
import Logging

/// Fetches one ref of a git repository with libgit2 and checks it out into a cache.
///
/// The fetch is synchronous and blocking: run it on a thread pool, never on an event loop or
/// the cooperative pool. Only the requested ref is downloaded (one refspec, no tag
/// auto-following). libgit2 1.5.1 has no `git_fetch_options.depth`, so the download is not
/// shallow: it carries the ref's full history, which the received-bytes limit bounds.
/// Submodules are never initialised or updated (C4): a gitlink is checked out as an empty
/// directory. Symlinks are checked out as symlinks (C5), never followed.
public struct GitFetcher: Sendable {
    /// Which remotes may be contacted.
    public var policy: GitURLPolicy
    /// Where progress and cache hits are logged (URLs always redacted).
    public var logger: Logger

    /// Creates a fetcher with a URL policy and the caller's logger.
    public init(policy: GitURLPolicy = .default, logger: Logger) {
        self.policy = policy
        self.logger = logger
    }

    /// Returns a checkout of `source`'s ref under `cacheDirectory`, downloading it unless the
    /// commit is already cached.
    ///
    /// A full commit id is served from the cache without contacting the remote; a branch, tag
    /// or default branch is first resolved with a cheap ref listing (`ls-remote`), then served
    /// from the cache if that commit is there. New checkouts are built in a temporary
    /// directory and renamed into `<cacheDirectory>/<url hash>/<commit>`, so the cache never
    /// holds a partial tree.
    public func fetch(_ source: GitSource, into cacheDirectory: String, limits: FetchLimits = FetchLimits()) throws -> FetchedRepository {
        do {
            try LibGit2.ensureInitialized()
            try policy.check(source)
            return try FetchOperation(source: source, cacheDirectory: cacheDirectory, limits: limits, policy: policy, logger: logger).run()
        } catch let error as GitError {
            throw Self.scrubbed(error, secrets: source.url.secrets)
        } catch {
            throw Self.scrubbed(GitError(.other, "fetching \(source.url.redacted) failed: \(error)"), secrets: source.url.secrets)
        }
    }

    /// Second line of defence (C8): credentials never reach libgit2's URL, but if any message
    /// still contained them they are masked here.
    static func scrubbed(_ error: GitError, secrets: [String]) -> GitError {
        var error = error
        for secret in secrets.sorted(by: { $0.count > $1.count }) {
            error.message = error.message.replacingOccurrences(of: secret, with: "***")
        }
        return error
    }
}
