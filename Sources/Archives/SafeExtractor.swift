import CLibArchive
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Extracts untrusted zip, tar and tar.gz archives without letting any entry escape the root.
///
/// Two passes over the archive file. Pass 1 reads every header and streams every entry's data
/// (headers can lie about sizes) and refuses the whole archive on the first unsafe entry, before
/// anything is written (SECURITY.md A1–A13). Pass 2 writes exactly the checked plan through
/// `archive_write_disk` with its secure flags, still enforcing the caps; on any failure
/// everything written is removed, so a refused archive leaves the destination absent or empty.
///
/// All methods block on file I/O and decompression: call them from a thread pool
/// (e.g. `NIOThreadPool.runIfActive`), never from an event loop or the cooperative pool.
public struct SafeExtractor: Sendable {
    /// The caps in force.
    public var limits: Limits
    /// Ownership and symlink policy.
    public var options: Options
    private let logger: Logger

    /// Creates an extractor; the logger receives debug-level summaries only.
    public init(limits: Limits = .default, options: Options = Options(), logger: Logger) {
        self.limits = limits
        self.options = options
        self.logger = logger
    }

    /// Extracts the archive at `archivePath` into `destination`, which must be absent or empty.
    ///
    /// The format is detected from the file's content. Throws `ArchiveError` naming the entry
    /// at fault; nothing is left in `destination` when it throws. Blocking.
    public func extract(archiveAt archivePath: String, into destination: String) throws -> ArchiveCounts {
        try withUTF8Locale {
            let format = try ArchiveFormat.detect(path: archivePath)
            let compressedSize = try FileTree.size(archivePath)
            // Refuse a busy destination before spending time reading a large archive.
            let exists = try destinationExists(destination)
            let plan = try validate(archivePath, format: format, compressedSize: compressedSize)
            let root = try prepare(destination, create: !exists)
            do {
                let counts = try write(plan, from: archivePath, format: format, root: root, createdRoot: !exists)
                logger.debug("archive extracted", metadata: [
                    "archive.format": "\(format.rawValue)", "archive.files": "\(counts.files)",
                    "archive.bytes": "\(counts.totalBytes)",
                ])
                return counts
            } catch {
                discard(root, createdRoot: !exists)
                throw error
            }
        }
    }

    /// Checks every entry of the archive at `archivePath` exactly as `extract` does before it
    /// writes anything (pass 1 only), writing nothing. Throws `ArchiveError` naming the entry at
    /// fault. Blocking.
    public func validate(archiveAt archivePath: String) throws {
        try withUTF8Locale {
            let format = try ArchiveFormat.detect(path: archivePath)
            _ = try validate(archivePath, format: format, compressedSize: try FileTree.size(archivePath))
        }
    }

    // MARK: Pass 1

    /// Reads the whole archive, checks every entry, and returns what pass 2 will write.
    func validate(_ path: String, format: ArchiveFormat, compressedSize: Int64) throws -> ExtractionPlan {
        var plan = ExtractionPlan(limits: limits, allowSymlinks: options.allowSymlinks, compressedSize: compressedSize)
        let reader = try ArchiveReader(path: path, format: format)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        let isZip = format == .zip
        while let (header, _) = try reader.next() {
            try plan.add(header)
            guard header.type == .regular || header.type == .hardlink else { continue }
            while true {
                let count = try reader.read(into: buffer, entry: header.displayName)
                if count == 0 { break }
                try plan.addData(count, declaredSize: header.declaredSize, isZip: isZip)
            }
            try plan.finishEntry(declaredSize: header.declaredSize, isZip: isZip)
        }
        if plan.entries.isEmpty {
            throw ArchiveError(.invalidArchive, "Invalid \(format) archive (\(isZip ? "zipfile" : "archive") is empty)")
        }
        try plan.verifySymlinks()
        return plan
    }

    // MARK: Pass 2

    /// Writes the plan, checking each entry is the one pass 1 approved.
    private func write(
        _ plan: ExtractionPlan, from path: String, format: ArchiveFormat, root: String, createdRoot: Bool
    ) throws -> ArchiveCounts {
        let reader = try ArchiveReader(path: path, format: format)
        let disk = try DiskWriter()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        var counts = ArchiveCounts()
        var remaining = limits.maxTotalBytes

        for planned in plan.entries {
            guard let (header, entry) = try reader.next() else { throw changed(planned.path) }
            try confirm(header, is: planned)
            if planned.kind == .root { continue }

            let target = root + "/" + planned.path
            archive_entry_copy_pathname(entry, target)
            archive_entry_set_perm(entry, mode_t(planned.mode))
            switch planned.kind {
            case .hardlink(let linked):
                archive_entry_copy_hardlink(entry, root + "/" + linked)
                // Never let data through a hardlink (CVE-2016-5418), whatever the header says.
                archive_entry_set_size(entry, 0)
            case .file:
                archive_entry_set_size(entry, planned.size)
            default:
                break
            }
            try disk.writeHeader(entry, name: planned.path)

            switch planned.kind {
            case .file:
                var written: Int64 = 0
                while true {
                    let count = try reader.read(into: buffer, entry: planned.path)
                    if count == 0 { break }
                    written += Int64(count)
                    remaining -= Int64(count)
                    // The file could have been swapped after pass 1; the caps still hold.
                    if written > planned.size || remaining < 0 { throw changed(planned.path) }
                    try disk.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), name: planned.path)
                }
                if written != planned.size { throw changed(planned.path) }
                counts.files += 1
                counts.totalBytes += written
            case .hardlink: counts.files += 1
            case .directory: counts.directories += 1
            case .symlink: counts.symlinks += 1
            case .root: break
            }
            try disk.finishEntry(name: planned.path)
            try applyOwner(target, entry: planned.path)
        }
        if try reader.next() != nil { throw changed("(entry after the last one checked)") }
        try disk.close()

        // libarchive creates missing parents with 0777 & ~umask; make them like explicit dirs.
        for directory in plan.implicitDirectories {
            let target = root + "/" + directory
            guard chmod(target, 0o755) == 0 else { throw FileTree.failure("Cannot set mode of \(directory)", entry: directory) }
            try applyOwner(target, entry: directory)
        }
        if createdRoot { try applyOwner(root, entry: nil) }
        return counts
    }

    /// Pass 2 must see the same entry pass 1 approved; otherwise the file changed underneath us.
    private func confirm(_ header: EntryHeader, is planned: ExtractionPlan.Entry) throws {
        let path = try? EntryPathPolicy.normalize(
            header.rawName ?? [], maxLength: limits.maxPathLength, maxDepth: limits.maxPathDepth)
        let sameType: Bool = switch (planned.kind, header.type) {
        case (.root, .directory), (.directory, .directory), (.file, .regular): true
        case (.symlink(let target), .symlink): header.symlinkTarget == Array(target.utf8)
        case (.hardlink, .hardlink): true
        default: false
        }
        if path != planned.path || !sameType { throw changed(header.displayName) }
    }

    private func changed(_ entry: String) -> ArchiveError {
        ArchiveError(.invalidArchive, "Archive changed between validation and extraction", entry: entry)
    }

    private func applyOwner(_ path: String, entry: String?) throws {
        guard let owner = options.owner else { return }
        guard lchown(path, owner.uid, owner.gid) == 0 else {
            throw FileTree.failure("Cannot change owner of \(entry ?? "the extraction root")", entry: entry)
        }
    }

    // MARK: Destination

    /// True if `destination` is an existing empty directory, false if absent; throws otherwise.
    private func destinationExists(_ destination: String) throws -> Bool {
        var st = stat()
        if stat(destination, &st) != 0 {
            if errno == ENOENT { return false }
            throw FileTree.failure("Cannot inspect destination \(destination)")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw ArchiveError(.io, "Destination \(destination) exists and is not a directory")
        }
        guard try FileTree.children(destination).isEmpty else {
            throw ArchiveError(.io, "Destination \(destination) is not empty")
        }
        return true
    }

    /// Creates the root if needed and returns its canonical path (no symlinks, for SECURE_SYMLINKS).
    private func prepare(_ destination: String, create: Bool) throws -> String {
        if create {
            guard mkdir(destination, 0o755) == 0 else {
                throw FileTree.failure("Cannot create destination \(destination)")
            }
            _ = chmod(destination, 0o755)
        }
        guard let resolved = realpath(destination, nil) else {
            let error = FileTree.failure("Cannot resolve destination \(destination)")
            if create { _ = rmdir(destination) }
            throw error
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Removes everything pass 2 wrote: the root itself if we created it, else its contents.
    private func discard(_ root: String, createdRoot: Bool) {
        do {
            if createdRoot {
                try FileTree.remove(root)
            } else {
                for name in try FileTree.children(root) { try FileTree.remove(root + "/" + name) }
            }
        } catch {
            logger.error("could not remove a partial extraction", metadata: [
                "archive.destination": "\(root)", "error": "\(error)",
            ])
        }
    }
}
