#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The archive formats the extractor accepts, detected from content and never from a file name.
public enum ArchiveFormat: String, Sendable, CustomStringConvertible {
    /// A zip archive (read through its central directory).
    case zip
    /// A plain (uncompressed) tar archive.
    case tar
    /// A gzip-compressed tar archive.
    case tarGzip

    /// The word used in "Invalid <word> archive (...)" messages.
    public var description: String {
        switch self {
        case .zip: "zip"
        case .tar, .tarGzip: "tar"
        }
    }

    /// Detects the format from the file's first bytes (and a zip's end-of-central-directory).
    ///
    /// Anything that is neither zip nor gzip is handed to the tar reader, which recognises old
    /// v7 tars without a magic number and otherwise fails with "Invalid tar archive (...)".
    /// Blocking: reads the file synchronously.
    public static func detect(path: String) throws -> ArchiveFormat {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ArchiveError(.io, "Cannot open archive \(path)", cause: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 4)
        let count = head.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4) }
        if count >= 2, head[0] == 0x1F, head[1] == 0x8B { return .tarGzip }
        // Local header, empty-archive end record, or spanned marker: all start a zip.
        if count == 4, head[0] == 0x50, head[1] == 0x4B,
           (head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6) || (head[2] == 7 && head[3] == 8) {
            return .zip
        }
        // A zip with a prefix (self-extracting stub) still ends with an end-of-central-directory.
        if hasZipEndRecord(fd: fd) { return .zip }
        return .tar
    }

    /// Looks for the end-of-central-directory signature in the last 64 KiB + 22 bytes.
    private static func hasZipEndRecord(fd: Int32) -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= 22 else { return false }
        let window = min(Int(st.st_size), 65_535 + 22)
        var tail = [UInt8](repeating: 0, count: window)
        let got = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(Int(st.st_size) - window)) }
        guard got == window else { return false }
        var i = window - 22
        while i >= 0 {
            if tail[i] == 0x50, tail[i + 1] == 0x4B, tail[i + 2] == 5, tail[i + 3] == 6 { return true }
            i -= 1
        }
        return false
    }
}
