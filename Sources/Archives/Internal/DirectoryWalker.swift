#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Walks a directory tree through directory descriptors, never following a symlink (A14).
///
/// Every child is looked at with `fstatat(AT_SYMLINK_NOFOLLOW)` and opened with `O_NOFOLLOW`
/// relative to its parent's descriptor, so swapping a directory for a symlink mid-walk cannot
/// lead outside the tree. Children are visited in byte order of their names, depth first.
enum DirectoryWalker {
    /// One thing found in the tree.
    struct Item {
        /// Path relative to the walk's root, `/`-separated, as raw bytes.
        var path: [UInt8]
        /// Descriptor of the parent directory (valid during the callback only).
        var parent: Int32
        /// Name within the parent, as raw bytes.
        var name: [UInt8]
        var status: stat
    }

    static func walk(root: String, _ visit: (Item) throws -> Void) throws {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileTree.failure("Cannot open directory \(root)") }
        defer { close(fd) }
        try walk(fd, prefix: [], visit)
    }

    private static func walk(_ fd: Int32, prefix: [UInt8], _ visit: (Item) throws -> Void) throws {
        for name in try names(fd, prefix: prefix) {
            var st = stat()
            let found = name.withCString { fstatat(fd, $0, &st, AT_SYMLINK_NOFOLLOW) }
            guard found == 0 else { throw FileTree.failure("Cannot inspect \(display(prefix + name))") }
            let path = prefix.isEmpty ? name : prefix + [UInt8(ascii: "/")] + name
            try visit(Item(path: path, parent: fd, name: name, status: st))
            if (st.st_mode & S_IFMT) == S_IFDIR {
                let child = name.withCString { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                guard child >= 0 else { throw FileTree.failure("Cannot open directory \(display(path))") }
                defer { close(child) }
                try walk(child, prefix: path, visit)
            }
        }
    }

    /// The names in the directory, sorted by bytes, without `.` and `..`.
    private static func names(_ fd: Int32, prefix: [UInt8]) throws -> [[UInt8]] {
        // fdopendir takes ownership of the descriptor it is given, so give it a duplicate.
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw FileTree.failure("Cannot list \(display(prefix))")
        }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let item = readdir(dir) {
            let name = withUnsafePointer(to: item.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) {
                    Array(UnsafeRawBufferPointer(start: $0, count: strlen($0)))
                }
            }
            if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    static func display(_ path: [UInt8]) -> String {
        path.isEmpty ? "." : String(decoding: path, as: UTF8.self)
    }
}
