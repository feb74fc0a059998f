import CLibArchive

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns a libarchive write handle (and one reusable entry) for creating an archive file.
final class ArchiveWriter {
    enum Format {
        /// pax-restricted tar (plain ustar unless a name needs pax) through gzip.
        case tarGzip
        /// zip with deflate and UTF-8 names.
        case zip
    }

    /// Ownership written into every entry.
    struct Ownership {
        var uid: Int64
        var gid: Int64
        var userName: String?
        var groupName: String?
    }

    private let handle: OpaquePointer
    private let entry: OpaquePointer
    private let ownership: Ownership

    init(output: String, format: Format, ownership: Ownership) throws {
        guard let handle = archive_write_new() else {
            throw ArchiveError(.library, "archive_write_new failed (out of memory)")
        }
        guard let entry = archive_entry_new() else {
            archive_write_free(handle)
            throw ArchiveError(.library, "archive_entry_new failed (out of memory)")
        }
        self.handle = handle
        self.entry = entry
        self.ownership = ownership
        switch format {
        case .tarGzip:
            try LibArchive.check(archive_write_add_filter_gzip(handle), handle, "Cannot set up gzip")
            try LibArchive.check(archive_write_set_format_pax_restricted(handle), handle, "Cannot set up tar")
            // No time in the gzip header: the same tree must give the same bytes.
            try LibArchive.check(archive_write_set_options(handle, "gzip:!timestamp"), handle, "Cannot set gzip options")
        case .zip:
            try LibArchive.check(archive_write_set_format_zip(handle), handle, "Cannot set up zip")
            try LibArchive.check(archive_write_set_options(handle, "zip:compression=deflate,zip:hdrcharset=UTF-8"),
                                 handle, "Cannot set zip options")
        }
        try LibArchive.check(archive_write_open_filename(handle, output), handle, kind: .io, "Cannot create \(output)")
    }

    deinit {
        archive_entry_free(entry)
        archive_write_free(handle)
    }

    /// Adds a directory entry.
    func addDirectory(path: [UInt8], status st: stat) throws {
        prepare(path: path, type: LibArchive.directory, status: st)
        try writeHeader(path)
    }

    /// Adds a symlink entry holding `target` as text; the link is never followed.
    func addSymlink(path: [UInt8], target: [UInt8], status st: stat) throws {
        prepare(path: path, type: LibArchive.symlink, status: st)
        target.withCString { archive_entry_copy_symlink(entry, $0) }
        try writeHeader(path)
    }

    /// Adds a regular file, streaming `size` bytes from the open descriptor; returns bytes stored.
    func addFile(path: [UInt8], descriptor fd: Int32, status st: stat) throws -> Int64 {
        prepare(path: path, type: LibArchive.regular, status: st)
        archive_entry_set_size(entry, Int64(st.st_size))
        try writeHeader(path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        var remaining = Int64(st.st_size)
        while remaining > 0 {
            let count = read(fd, buffer.baseAddress, Int(min(Int64(buffer.count), remaining)))
            if count < 0 {
                if errno == EINTR { continue }
                throw FileTree.failure("Cannot read \(display(path))", entry: display(path))
            }
            // A file that shrank while being packed is padded with zeros by libarchive.
            if count == 0 { break }
            let written = archive_write_data(handle, buffer.baseAddress, count)
            if written < 0 {
                throw ArchiveError(.io, "Cannot write \(display(path)): \(LibArchive.errorString(handle))", entry: display(path))
            }
            remaining -= Int64(count)
        }
        return Int64(st.st_size) - remaining
    }

    /// Flushes and finishes the archive file; without this the output is incomplete.
    func close() throws {
        try LibArchive.check(archive_write_close(handle), handle, kind: .io, "Cannot finish the archive")
    }

    private func prepare(path: [UInt8], type: UInt32, status st: stat) {
        archive_entry_clear(entry)
        path.withCString { archive_entry_copy_pathname(entry, $0) }
        archive_entry_set_filetype(entry, type)
        // Permission bits only: setuid/setgid/sticky never travel in an archive we make.
        archive_entry_set_perm(entry, mode_t(st.st_mode) & 0o777)
        archive_entry_set_mtime(entry, st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
        archive_entry_set_uid(entry, ownership.uid)
        archive_entry_set_gid(entry, ownership.gid)
        if let name = ownership.userName { archive_entry_copy_uname(entry, name) }
        if let name = ownership.groupName { archive_entry_copy_gname(entry, name) }
    }

    private func writeHeader(_ path: [UInt8]) throws {
        try LibArchive.check(archive_write_header(handle, entry), handle, kind: .io,
                             "Cannot add \(ArchiveError.quoted(display(path)))", entry: display(path))
    }

    private func display(_ path: [UInt8]) -> String { String(decoding: path, as: UTF8.self) }
}
