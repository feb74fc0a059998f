#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small filesystem helpers that never follow symlinks.
enum FileTree {
    /// Removes `path` and everything under it; a symlink is removed itself, never its target.
    static func remove(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw failure("Cannot inspect \(path)")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            // Owner write+exec so a 0555 directory can be emptied.
            _ = chmod(path, 0o700)
            for name in try children(path) {
                try remove(path + "/" + name)
            }
            guard rmdir(path) == 0 else { throw failure("Cannot remove directory \(path)") }
        } else {
            guard unlink(path) == 0 else { throw failure("Cannot remove \(path)") }
        }
    }

    /// Names in a directory, without `.` and `..`.
    static func children(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw failure("Cannot list \(path)") }
        defer { closedir(dir) }
        var names: [String] = []
        while let item = readdir(dir) {
            let name = withUnsafePointer(to: item.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The size of a file in bytes.
    static func size(_ path: String) throws -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw failure("Cannot stat \(path)") }
        return Int64(st.st_size)
    }

    /// An `.io` error carrying `strerror(errno)`.
    static func failure(_ message: String, entry: String? = nil) -> ArchiveError {
        ArchiveError(.io, message, entry: entry, cause: String(cString: strerror(errno)))
    }
}
