import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Packs chosen paths under a root directory into a zip (the CLI's app upload).
///
/// Paths are stored in the order given, relative to the root, with deflate and UTF-8 names.
/// Symlinks are stored as symlinks (never followed), directories as directory entries,
/// special files are skipped. Blocking: call from a thread pool or a CLI's main thread.
public struct ZipWriter: Sendable {
    private let logger: Logger

    /// Creates a writer.
    public init(logger: Logger) {
        self.logger = logger
    }

    /// Writes `paths` (relative to `root`, no `..`, not absolute) to a new zip at `output`.
    ///
    /// On failure the partial output file is removed. Blocking.
    @discardableResult
    public func write(paths: [String], relativeTo root: String, to output: String) throws -> ArchiveCounts {
        try withUTF8Locale {
            let ownership = ArchiveWriter.Ownership(uid: 0, gid: 0, userName: nil, groupName: nil)
            let writer = try ArchiveWriter(output: output, format: .zip, ownership: ownership)
            var counts = ArchiveCounts()
            do {
                for path in paths {
                    try add(path, root: root, to: writer, counts: &counts)
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

    private func add(_ path: String, root: String, to writer: ArchiveWriter, counts: inout ArchiveCounts) throws {
        let relative: String
        do {
            relative = try EntryPathPolicy.normalize(Array(path.utf8), maxLength: Int(PATH_MAX), maxDepth: Int(PATH_MAX))
        } catch {
            throw ArchiveError(error.kind, "Path \(ArchiveError.quoted(path)) \(error.reason)", entry: path)
        }
        guard !relative.isEmpty else { return }
        let full = root + "/" + relative
        var st = stat()
        guard lstat(full, &st) == 0 else { throw FileTree.failure("Cannot inspect \(relative)", entry: relative) }
        let name = Array(relative.utf8)
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            try writer.addDirectory(path: name, status: st)
            counts.directories += 1
        case S_IFLNK:
            let capacity = Int(PATH_MAX) + 1
            var buffer = [CChar](repeating: 0, count: capacity)
            let count = readlink(full, &buffer, capacity)
            guard count >= 0 else { throw FileTree.failure("Cannot read symlink \(relative)", entry: relative) }
            try writer.addSymlink(path: name, target: buffer[0..<count].map { UInt8(bitPattern: $0) }, status: st)
            counts.symlinks += 1
        case S_IFREG:
            let fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw FileTree.failure("Cannot open \(relative)", entry: relative) }
            defer { close(fd) }
            var opened = stat()
            guard fstat(fd, &opened) == 0 else { throw FileTree.failure("Cannot inspect \(relative)", entry: relative) }
            counts.totalBytes += try writer.addFile(path: name, descriptor: fd, status: opened)
            counts.files += 1
        default:
            counts.skipped += 1
        }
    }
}
