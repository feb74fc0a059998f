import CLibArchive

/// Owns a libarchive read handle for one archive file and frees it in `deinit`.
///
/// Only the detected format's reader (and gzip for tar.gz) is enabled, which keeps
/// libarchive's attack surface to what we accept. Zips are read through their central
/// directory (seekable reader), so a zip without a valid one is invalid. Blocking.
final class ArchiveReader {
    private let handle: OpaquePointer
    let format: ArchiveFormat

    init(path: String, format: ArchiveFormat) throws {
        guard let handle = archive_read_new() else {
            throw ArchiveError(.library, "archive_read_new failed (out of memory)")
        }
        self.handle = handle
        self.format = format
        switch format {
        case .zip:
            archive_read_support_format_zip_seekable(handle)
        case .tar:
            archive_read_support_format_tar(handle)
        case .tarGzip:
            archive_read_support_filter_gzip(handle)
            archive_read_support_format_tar(handle)
        }
        let status = archive_read_open_filename(handle, path, 64 * 1024)
        if status != ARCHIVE_OK && status != ARCHIVE_WARN {
            throw invalid(entry: nil)
        }
    }

    deinit {
        archive_read_free(handle)
    }

    /// The next entry's header and the libarchive entry (valid until the next call), or nil at the end.
    func next() throws -> (header: EntryHeader, entry: OpaquePointer)? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(handle, &entry)
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
            throw invalid(entry: nil)
        }
        return (EntryHeader(entry), entry)
    }

    /// Reads up to `buffer.count` bytes of the current entry's data; 0 at its end.
    func read(into buffer: UnsafeMutableRawBufferPointer, entry: String) throws -> Int {
        let count = archive_read_data(handle, buffer.baseAddress, buffer.count)
        // ARCHIVE_WARN here means damaged data (bad CRC, wrong size): as fatal as any other.
        if count < 0 { throw invalid(entry: entry) }
        return count
    }

    /// The A13 error: "Invalid zip archive (<libarchive's message>)".
    func invalid(entry: String?) -> ArchiveError {
        ArchiveError(.invalidArchive, "Invalid \(format) archive (\(LibArchive.errorString(handle)))", entry: entry)
    }
}
