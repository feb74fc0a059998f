import CLibGit2

/// Sums the blobs of a tree before anything is written, so a checkout over the size or file
/// cap fails without filling the disk (C6).
final class CheckoutBudget {
    private let repository: RepositoryHandle
    private let limits: FetchLimits
    private let url: GitURL
    private var files = 0
    private var bytes = 0
    private var failure: GitError?

    init(repository: RepositoryHandle, limits: FetchLimits, url: GitURL) {
        self.repository = repository
        self.limits = limits
        self.url = url
    }

    /// Throws a `limitExceeded` error naming the cap the tree would exceed.
    func check(_ tree: ObjectHandle) throws {
        var odb: OpaquePointer?
        try LibGit2.check(git_repository_odb(&odb, repository.pointer), "opening object database")
        defer { git_odb_free(odb) }
        var state = (budget: self, odb: odb)
        let rc = withUnsafeMutablePointer(to: &state) { pointer in
            git_tree_walk(tree.pointer, GIT_TREEWALK_PRE, { _, entry, payload in
                guard let entry, let payload else { return 0 }
                let state = payload.assumingMemoryBound(to: (budget: CheckoutBudget, odb: OpaquePointer?).self).pointee
                return state.budget.visit(entry, odb: state.odb)
            }, pointer)
        }
        if let failure { throw failure }
        try LibGit2.check(rc, "walking the tree of \(url.redacted)")
    }

    /// Gitlinks (submodules) are skipped: they are never fetched, only an empty directory.
    private func visit(_ entry: OpaquePointer, odb: OpaquePointer?) -> Int32 {
        guard git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return 0 }
        var size = 0
        var type = GIT_OBJECT_INVALID
        guard git_odb_read_header(&size, &type, odb, git_tree_entry_id(entry)) == 0 else { return -1 }
        files += 1
        bytes += size
        if files > limits.maxCheckoutFiles {
            failure = GitError(.limitExceeded, "checkout of \(url.redacted) exceeds the file-count limit of \(limits.maxCheckoutFiles) files")
            return -1
        }
        if bytes > limits.maxCheckoutBytes {
            failure = GitError(.limitExceeded, "checkout of \(url.redacted) exceeds the checkout-size limit of \(limits.maxCheckoutBytes) bytes")
            return -1
        }
        return 0
    }
}
