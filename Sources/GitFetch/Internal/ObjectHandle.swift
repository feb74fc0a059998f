import CLibGit2

/// Owns a `git_object *` and frees it in `deinit`.
final class ObjectHandle {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { git_object_free(pointer) }

    /// The object's id.
    var oid: git_oid { git_object_id(pointer).pointee }

    /// The object's type.
    var type: git_object_t { git_object_type(pointer) }

    /// Looks up an object by (possibly abbreviated) hex id.
    static func lookup(prefix hex: String, in repository: RepositoryHandle) throws -> ObjectHandle {
        var oid = git_oid()
        try LibGit2.check(git_oid_fromstrn(&oid, hex, hex.utf8.count), "invalid object id")
        var out: OpaquePointer?
        try LibGit2.check(git_object_lookup_prefix(&out, repository.pointer, &oid, hex.utf8.count, GIT_OBJECT_ANY),
                          "looking up object \(hex)")
        guard let out else { throw GitError(.library, "git_object_lookup_prefix returned no object") }
        return ObjectHandle(out)
    }

    /// Peels tags down to an object of the given type.
    func peeled(to type: git_object_t) throws -> ObjectHandle {
        var out: OpaquePointer?
        try LibGit2.check(git_object_peel(&out, pointer, type), "peeling \(LibGit2.hex(oid))")
        guard let out else { throw GitError(.library, "git_object_peel returned no object") }
        return ObjectHandle(out)
    }
}
