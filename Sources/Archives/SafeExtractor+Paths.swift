extension SafeExtractor {
    /// Checks a path that will be placed next to an extraction (e.g. a file added to an extracted
    /// tree by its caller) exactly as an entry name is checked: valid UTF-8, no control characters
    /// (NUL, newline), not absolute (`/x`, `\x`, `C:\x`), no `..` component (with `\` counted as a
    /// separator), within the path length and depth limits. Returns the normalised relative path
    /// (`./a//b` -> `a/b`; "" for the root itself).
    ///
    /// Whether the path goes through a symlink depends on the tree it is placed in; callers check
    /// that themselves (never following a link). Throws `ArchiveError` naming the path. Pure.
    public func normalizedPath(_ path: String) throws -> String {
        do {
            return try EntryPathPolicy.normalize(Array(path.utf8), maxLength: limits.maxPathLength, maxDepth: limits.maxPathDepth)
        } catch {
            throw ArchiveError(error.kind, "Path \(ArchiveError.quoted(path)) \(error.reason)", entry: path)
        }
    }

    /// Removes `path` and everything under it without following symlinks (a link is removed
    /// itself, never its target); directories without write permission are emptied too. An
    /// absent path is not an error. For scratch trees an extraction was written into. Blocking.
    public static func removeTree(at path: String) throws {
        try FileTree.remove(path)
    }
}
