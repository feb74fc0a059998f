import CLibGit2
import Foundation
import Logging

/// One run of `GitFetcher.fetch`: resolve the ref, consult the cache, download, check out.
struct FetchOperation {
    let source: GitSource
    let cacheDirectory: String
    let limits: FetchLimits
    let policy: GitURLPolicy
    let logger: Logger

    /// What to download and how to find the commit afterwards.
    private struct Plan {
        /// Refspecs handed to `git_remote_download`.
        var refspecs: [String]
        /// Object id (or abbreviated id) to look up after the download.
        var target: String
        /// The commit the remote advertised, when known before downloading (for the cache).
        var expectedCommit: String?
    }

    /// Every branch and tag: only used to resolve a commit no ref points at.
    private static let allRefs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]

    private var url: GitURL { source.url }
    private var requested: String { source.ref == .defaultBranch ? "HEAD" : source.ref.description }

    func run() throws -> FetchedRepository {
        let cacheRoot = try cacheRootPath()
        var logger = logger
        logger[metadataKey: "git.url"] = "\(url.redacted)"
        logger[metadataKey: "git.ref"] = "\(requested)"

        // A pinned commit is immutable: serve it without touching the network (C9).
        if case .commit(let id) = source.ref, let cached = cached(id, in: cacheRoot) {
            logger.debug("git fetch served from cache", metadata: ["git.commit": "\(id)"])
            return cached
        }

        let temporary = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let context = FetchContext(url: url, limits: limits, policy: policy)
        let commit: String
        do {
            let repository = try RepositoryHandle.initialize(at: temporary)
            let remote = try RemoteHandle.anonymous(url: url.urlForLibgit2, in: repository)
            let plan = try withExtendedLifetime(context) { try connectAndPlan(remote, context: context) }
            if let expected = plan.expectedCommit, let cached = cached(expected, in: cacheRoot) {
                logger.debug("git fetch served from cache", metadata: ["git.commit": "\(expected)"])
                return cached
            }
            try withExtendedLifetime(context) { try download(remote, plan: plan, context: context) }
            commit = try checkout(repository, plan: plan, context: context)
        }
        if let cached = cached(commit, in: cacheRoot) {
            return cached  // another fetch finished the same commit first
        }
        let final = cacheRoot + "/" + commit
        try createDirectory(cacheRoot)
        if rename(temporary, final) != 0 {
            let code = errno
            if let cached = cached(commit, in: cacheRoot) { return cached }
            throw GitError(.io, "moving checkout of \(url.redacted) into the cache failed: \(String(cString: strerror(code)))")
        }
        logger.info("git fetch done", metadata: ["git.commit": "\(commit)", "git.bytes": "\(context.receivedBytes)"])
        return FetchedRepository(commit: commit, directory: final, fromCache: false)
    }

    // MARK: Cache

    /// `<cacheDirectory>/<hash of the credential-free URL>`; a URL with credentials gets its
    /// own namespace so a tenant without access to a private repository cannot be served
    /// another tenant's checkout of it by guessing the commit id.
    private func cacheRootPath() throws -> String {
        var key = url.canonical
        if url.hasCredentials, let info = url.userInfo { key += "\n" + info }
        let directory = URL(fileURLWithPath: cacheDirectory).standardizedFileURL.path
        return directory + "/" + (try LibGit2.hash(key))
    }

    private func cached(_ commit: String, in cacheRoot: String) -> FetchedRepository? {
        let path = cacheRoot + "/" + commit
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        return FetchedRepository(commit: commit, directory: path, fromCache: true)
    }

    private func makeTemporaryDirectory() throws -> String {
        let path = URL(fileURLWithPath: cacheDirectory).standardizedFileURL.path + "/.tmp/" + UUID().uuidString.lowercased()
        try createDirectory(path)
        return path
    }

    private func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw GitError(.io, "creating cache directory failed: \(error.localizedDescription)")
        }
    }

    // MARK: Resolve

    /// Connects, lists the remote's refs and decides what to download.
    private func connectAndPlan(_ remote: RemoteHandle, context: FetchContext) throws -> Plan {
        if case .named(let name) = source.ref {
            // Validate before connecting: an invalid name (`;rm -rf /`, `..`, `-x`) is simply
            // a ref that cannot exist, reported the same way (C7).
            guard Self.isAcceptableRefName(name) else { throw notFound("not a valid branch or tag name") }
        }
        var options = git_remote_connect_options()
        try LibGit2.check(git_remote_connect_options_init(&options, UInt32(GIT_REMOTE_CONNECT_OPTIONS_VERSION)), "connect options")
        options.callbacks = try context.callbacks()
        options.follow_redirects = policy.followRedirects ? GIT_REMOTE_REDIRECT_INITIAL : GIT_REMOTE_REDIRECT_NONE
        try context.run("connecting to \(url.redacted)") { git_remote_connect_ext(remote.pointer, GIT_DIRECTION_FETCH, &options) }
        let refs = try listRefs(remote)
        return try plan(refs, defaultBranch: defaultBranch(remote))
    }

    private struct AdvertisedRef {
        var name: String
        var oid: String
    }

    private func listRefs(_ remote: RemoteHandle) throws -> [AdvertisedRef] {
        var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
        var count = 0
        try LibGit2.check(git_remote_ls(&heads, &count, remote.pointer), "listing refs of \(url.redacted)")
        guard let heads else { return [] }
        return (0..<count).compactMap { index in
            guard let head = heads[index], let name = head.pointee.name else { return nil }
            return AdvertisedRef(name: String(cString: name), oid: LibGit2.hex(head.pointee.oid))
        }
    }

    /// The branch the remote's HEAD names, when the server says.
    private func defaultBranch(_ remote: RemoteHandle) -> String? {
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        guard git_remote_default_branch(&buffer, remote.pointer) == 0, let pointer = buffer.ptr else { return nil }
        return String(cString: pointer)
    }

    private func plan(_ refs: [AdvertisedRef], defaultBranch: String?) throws -> Plan {
        let byName = Dictionary(refs.map { ($0.name, $0.oid) }, uniquingKeysWith: { first, _ in first })
        func planFor(ref name: String) -> Plan? {
            guard let oid = byName[name] else { return nil }
            // Annotated tags are advertised with their peeled commit as `<tag>^{}`.
            return Plan(refspecs: [name], target: oid, expectedCommit: byName[name + "^{}"] ?? oid)
        }
        switch source.ref {
        case .defaultBranch:
            guard let head = byName["HEAD"] else { throw notFound("the remote has no default branch (HEAD)") }
            if let branch = defaultBranch, byName[branch] == head, let plan = planFor(ref: branch) { return plan }
            return Plan(refspecs: ["HEAD"], target: head, expectedCommit: head)
        case .named(let name):
            let candidates = name.hasPrefix("refs/") ? [name] : ["refs/heads/" + name, "refs/tags/" + name]
            if let plan = candidates.lazy.compactMap(planFor(ref:)).first { return plan }
            if source.ref.couldBeAbbreviatedCommit {
                return planForCommit(prefix: name.lowercased(), refs: refs, byName: byName)
            }
            throw notFound("no such branch or tag")
        case .commit(let id):
            return planForCommit(prefix: id, refs: refs, byName: byName)
        }
    }

    /// A commit some advertised ref points at is fetched through that ref (works on every
    /// server); any other commit needs every branch and tag, since servers need not allow
    /// fetching unadvertised objects and libgit2 1.5.1 cannot ask for them.
    private func planForCommit(prefix: String, refs: [AdvertisedRef], byName: [String: String]) -> Plan {
        let matches = refs.filter { $0.oid.hasPrefix(prefix) && $0.name != "HEAD" }
        if Set(matches.map(\.oid)).count == 1, let match = matches.first {
            let refName = match.name.hasSuffix("^{}") ? String(match.name.dropLast(3)) : match.name
            return Plan(refspecs: [refName], target: byName[refName] ?? match.oid, expectedCommit: match.oid)
        }
        return Plan(refspecs: Self.allRefs, target: prefix, expectedCommit: prefix.count == 40 ? prefix : nil)
    }

    /// git's ref-name rules plus ours: no leading `-` (could read as an option to a tool that
    /// later sees the name), bounded length.
    static func isAcceptableRefName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255, !name.hasPrefix("-"), !name.contains("..") else { return false }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return false }
        let full = name.hasPrefix("refs/") ? name : "refs/heads/" + name
        return LibGit2.isValidReferenceName(full)
    }

    private func notFound(_ reason: String) -> GitError {
        GitError(.refNotFound, "failed to fetch ref '\(requested)' from \(url.redacted): \(reason)")
    }

    // MARK: Download and checkout

    private func download(_ remote: RemoteHandle, plan: Plan, context: FetchContext) throws {
        var options = git_fetch_options()
        try LibGit2.check(git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION)), "fetch options")
        options.callbacks = try context.callbacks()
        options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
        options.update_fetchhead = 0
        options.prune = GIT_FETCH_NO_PRUNE
        options.follow_redirects = policy.followRedirects ? GIT_REMOTE_REDIRECT_INITIAL : GIT_REMOTE_REDIRECT_NONE
        try withStringArray(plan.refspecs) { refspecs in
            try context.run("downloading '\(requested)' from \(url.redacted)") {
                git_remote_download(remote.pointer, refspecs, &options)
            }
        }
    }

    /// Peels the target to its commit, enforces the checkout caps, and writes the tree.
    private func checkout(_ repository: RepositoryHandle, plan: Plan, context: FetchContext) throws -> String {
        let object: ObjectHandle
        do {
            object = try ObjectHandle.lookup(prefix: plan.target, in: repository)
        } catch let error as GitError {
            throw notFound(error.code == GIT_EAMBIGUOUS.rawValue ? "abbreviated commit id is ambiguous" : "no such branch, tag or commit")
        }
        let commitObject: ObjectHandle
        do {
            commitObject = try object.peeled(to: GIT_OBJECT_COMMIT)
        } catch {
            throw notFound("it does not point at a commit")
        }
        let commit = LibGit2.hex(commitObject.oid)
        if case .commit(let id) = source.ref, id != commit { throw notFound("no such commit") }
        let tree = try commitObject.peeled(to: GIT_OBJECT_TREE)
        try CheckoutBudget(repository: repository, limits: limits, url: url).check(tree)
        try context.checkDeadline()

        var options = git_checkout_options()
        try LibGit2.check(git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "checkout options")
        options.checkout_strategy = GIT_CHECKOUT_FORCE.rawValue
        try LibGit2.check(git_checkout_tree(repository.pointer, commitObject.pointer, &options), "checking out \(commit)")
        var oid = commitObject.oid
        try LibGit2.check(git_repository_set_head_detached(repository.pointer, &oid), "setting HEAD to \(commit)")
        try context.checkDeadline()
        return commit
    }

    /// Lends `strings` to C as a `git_strarray` for the duration of `body`.
    private func withStringArray<T>(_ strings: [String], _ body: (UnsafePointer<git_strarray>) throws -> T) throws -> T {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        return try pointers.withUnsafeMutableBufferPointer { buffer in
            var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
            return try body(&array)
        }
    }
}
