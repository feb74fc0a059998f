import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Packs a directory into a deterministic tar.gz (droplets, buildpack caches).
///
/// Entries are written depth first in byte order of their names; symlinks are stored as
/// symlinks and never followed (A14: a link to `/` stays one small entry); hardlinked files are
/// stored as independent regular files; devices, FIFOs and sockets are skipped. Every entry
/// gets the configured uid/gid and names, its own mtime, and its permission bits without
/// setuid/setgid/sticky. The gzip header carries no timestamp, so the same tree gives the same bytes.
///
/// Blocking: call from a thread pool, never from an event loop or the cooperative pool.
public struct TarGzWriter: Sendable {
    /// Owner id stored in every entry.
    public var uid: UInt32
    /// Group id stored in every entry.
    public var gid: UInt32
    /// Owner name stored in every entry.
    public var userName: String
    /// Group name stored in every entry.
    public var groupName: String
    private let logger: Logger

    /// Creates a writer; defaults match the `vcap` user (2000:2000) droplets run as.
    public init(uid: UInt32 = 2000, gid: UInt32 = 2000, userName: String = "vcap", groupName: String = "vcap", logger: Logger) {
        self.uid = uid
        self.gid = gid
        self.userName = userName
        self.groupName = groupName
        self.logger = logger
    }

    /// Writes `directory`'s contents (not the directory itself) to a new tar.gz at `output`.
    ///
    /// On failure the partial output file is removed. Blocking.
    @discardableResult
    public func write(directory: String, to output: String) throws -> ArchiveCounts {
        try withUTF8Locale {
            let ownership = ArchiveWriter.Ownership(uid: Int64(uid), gid: Int64(gid), userName: userName, groupName: groupName)
            let writer = try ArchiveWriter(output: output, format: .tarGzip, ownership: ownership)
            var counts = ArchiveCounts()
            do {
                try DirectoryWalker.walk(root: directory) { item in
                    try add(item, to: writer, counts: &counts)
                }
                try writer.close()
            } catch {
                _ = unlink(output)
                throw error
            }
            if counts.skipped > 0 {
                logger.debug("special files left out of archive", metadata: ["archive.skipped": "\(counts.skipped)"])
            }
            return counts
        }
    }

    private func add(_ item: DirectoryWalker.Item, to writer: ArchiveWriter, counts: inout ArchiveCounts) throws {
        switch item.status.st_mode & S_IFMT {
        case S_IFDIR:
            try writer.addDirectory(path: item.path, status: item.status)
            counts.directories += 1
        case S_IFLNK:
            let target = try Self.readLink(parent: item.parent, name: item.name, display: item.path)
            try writer.addSymlink(path: item.path, target: target, status: item.status)
            counts.symlinks += 1
        case S_IFREG:
            let fd = item.name.withCString { openat(item.parent, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
            guard fd >= 0 else { throw FileTree.failure("Cannot open \(DirectoryWalker.display(item.path))") }
            defer { close(fd) }
            // Size and mode from the open file, not the earlier lstat: it is what we will read.
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                throw FileTree.failure("Cannot inspect \(DirectoryWalker.display(item.path))")
            }
            counts.totalBytes += try writer.addFile(path: item.path, descriptor: fd, status: st)
            counts.files += 1
        default:
            counts.skipped += 1
        }
    }

    /// Reads a symlink's target relative to its parent descriptor.
    static func readLink(parent: Int32, name: [UInt8], display: [UInt8]) throws -> [UInt8] {
        let capacity = Int(PATH_MAX) + 1
        var buffer = [CChar](repeating: 0, count: capacity)
        let count = name.withCString { readlinkat(parent, $0, &buffer, capacity) }
        guard count >= 0 else { throw FileTree.failure("Cannot read symlink \(DirectoryWalker.display(display))") }
        return buffer[0..<count].map { UInt8(bitPattern: $0) }
    }
}
