import CLibGit2

/// libgit2 process state and the one place C return codes become Swift errors.
enum LibGit2 {
    /// `git_libgit2_init` must run before any other call; a global `let` is initialised
    /// exactly once, thread-safely, on first use. Never shut down: other fetches may be running.
    private static let initialized: Bool = git_libgit2_init() > 0

    /// Initialises libgit2 once per process.
    static func ensureInitialized() throws {
        guard initialized else { throw GitError(.library, "libgit2 failed to initialise") }
    }

    /// Throws when `rc` is an error, with libgit2's own last message.
    @discardableResult
    static func check(_ rc: Int32, _ operation: @autoclosure () -> String, kind: GitError.Kind = .library) throws -> Int32 {
        guard rc < 0 else { return rc }
        throw GitError(kind, "\(operation()): \(lastErrorMessage())", code: rc)
    }

    /// The message of the last libgit2 error on this thread.
    static func lastErrorMessage() -> String {
        guard let error = git_error_last(), let message = error.pointee.message else { return "unknown libgit2 error" }
        return String(cString: message)
    }

    /// Parses a full 40-hex object id.
    static func oid(_ hex: String) throws -> git_oid {
        var oid = git_oid()
        try check(git_oid_fromstr(&oid, hex), "invalid object id '\(GitURL.safeForDisplay(hex))'")
        return oid
    }

    /// Formats an object id as 40 lower-case hex digits.
    static func hex(_ oid: git_oid) -> String {
        var copy = oid
        var buffer = [CChar](repeating: 0, count: Int(GIT_OID_HEXSZ) + 1)
        git_oid_fmt(&buffer, &copy)
        return String(decoding: buffer.prefix(Int(GIT_OID_HEXSZ)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// SHA-1 (git's blob hash) of a string, as hex: a stable, path-safe cache key.
    static func hash(_ text: String) throws -> String {
        var oid = git_oid()
        let bytes = Array(text.utf8)
        try check(git_odb_hash(&oid, bytes, bytes.count, GIT_OBJECT_BLOB), "hashing cache key")
        return hex(oid)
    }

    /// Whether `name` is a full ref name git would accept (no `..`, control characters,
    /// spaces, `~^:?*[\`, `@{`, trailing `.lock` or `/`, ...).
    static func isValidReferenceName(_ name: String) -> Bool {
        var valid: Int32 = 0
        return git_reference_name_is_valid(&valid, name) == 0 && valid == 1
    }
}
