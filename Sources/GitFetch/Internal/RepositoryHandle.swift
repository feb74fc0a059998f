import CLibGit2

/// Owns a `git_repository *` and frees it in `deinit`.
final class RepositoryHandle {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { git_repository_free(pointer) }

    /// Creates a non-bare repository whose working tree is `path`.
    static func initialize(at path: String) throws -> RepositoryHandle {
        var out: OpaquePointer?
        try LibGit2.check(git_repository_init(&out, path, 0), "initialising repository")
        guard let out else { throw GitError(.library, "git_repository_init returned no repository") }
        return RepositoryHandle(out)
    }
}
