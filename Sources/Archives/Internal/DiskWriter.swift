import CLibArchive

/// Owns a libarchive `archive_write_disk` handle and frees it in `deinit`.
///
/// Flags: SECURE_NODOTDOT and SECURE_SYMLINKS so libarchive itself refuses `..` and writing
/// through any symlink, PERM so the (already masked) modes are exact whatever the umask, TIME,
/// and NO_OVERWRITE as a second line against duplicates. Never OWNER, XATTR, ACL or FFLAGS:
/// ownership is applied by the extractor with `lchown`, and the rest is untrusted metadata.
///
/// SECURE_NOABSOLUTEPATHS is deliberately not set: it only works with names relative to the
/// process-wide current directory, and `chdir` would race every other thread. Instead pass 1
/// refuses absolute names and the extractor passes libarchive `<canonical root>/<checked path>`.
final class DiskWriter {
    private let handle: OpaquePointer

    init() throws {
        guard let handle = archive_write_disk_new() else {
            throw ArchiveError(.library, "archive_write_disk_new failed (out of memory)")
        }
        self.handle = handle
        let flags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS
            | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_NO_OVERWRITE
        try LibArchive.check(archive_write_disk_set_options(handle, flags), handle, "Cannot set extraction options")
    }

    deinit {
        archive_write_free(handle)
    }

    func writeHeader(_ entry: OpaquePointer, name: String) throws {
        try LibArchive.check(archive_write_header(handle, entry), handle, kind: .io,
                             "Cannot extract entry \(ArchiveError.quoted(name))", entry: name)
    }

    func write(_ buffer: UnsafeRawBufferPointer, name: String) throws {
        var offset = 0
        while offset < buffer.count {
            let written = archive_write_data(handle, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            if written < 0 {
                throw ArchiveError(.io, "Cannot write entry \(ArchiveError.quoted(name)): \(LibArchive.errorString(handle))", entry: name)
            }
            if written == 0 { break }
            offset += written
        }
    }

    func finishEntry(name: String) throws {
        try LibArchive.check(archive_write_finish_entry(handle), handle, kind: .io,
                             "Cannot finish entry \(ArchiveError.quoted(name))", entry: name)
    }

    /// Applies deferred directory times and modes; must succeed before the tree counts as extracted.
    func close() throws {
        try LibArchive.check(archive_write_close(handle), handle, kind: .io, "Cannot finish extraction")
    }
}
