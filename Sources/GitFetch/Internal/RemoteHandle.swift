import CLibGit2

/// Owns a `git_remote *`; disconnects and frees it in `deinit`.
final class RemoteHandle {
    let pointer: OpaquePointer
    /// Keeps the repository alive as long as the remote refers to it.
    private let repository: RepositoryHandle
    init(_ pointer: OpaquePointer, repository: RepositoryHandle) {
        self.pointer = pointer
        self.repository = repository
    }
    deinit {
        git_remote_disconnect(pointer)
        git_remote_free(pointer)
    }

    /// An in-memory remote: nothing written to the config, no default fetch refspec, and no
    /// `url.<base>.insteadOf` rewriting, which could otherwise bypass the URL policy.
    static func anonymous(url: String, in repository: RepositoryHandle) throws -> RemoteHandle {
        var options = git_remote_create_options()
        try LibGit2.check(git_remote_create_options_init(&options, UInt32(GIT_REMOTE_CREATE_OPTIONS_VERSION)), "remote options")
        options.repository = repository.pointer
        options.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF.rawValue | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC.rawValue
        var out: OpaquePointer?
        try LibGit2.check(git_remote_create_with_opts(&out, url, &options), "creating remote")
        guard let out else { throw GitError(.library, "git_remote_create_with_opts returned no remote") }
        return RemoteHandle(out, repository: repository)
    }
}
