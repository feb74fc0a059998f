import CLibArchive

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Constants and the one `check` every libarchive call goes through.
enum LibArchive {
    // The AE_IF* macros are C casts, which Swift does not import; values from archive_entry.h.
    static let typeMask: UInt32 = 0o170000
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
    static let characterDevice: UInt32 = 0o020000
    static let blockDevice: UInt32 = 0o060000
    static let fifo: UInt32 = 0o010000
    static let socket: UInt32 = 0o140000

    /// libarchive's last error message for `archive`, or a generic one if it set none.
    static func errorString(_ archive: OpaquePointer) -> String {
        guard let text = archive_error_string(archive) else { return "unknown libarchive error" }
        return String(decoding: bytes(text) ?? [], as: UTF8.self)
    }

    /// Turns a libarchive status into a thrown `ArchiveError` that carries libarchive's message.
    ///
    /// `ARCHIVE_WARN` is success with a note (libarchive uses it for e.g. unconvertible
    /// metadata); the callers validate what matters themselves, so it is not an error here.
    @discardableResult
    static func check(
        _ status: Int32,
        _ archive: OpaquePointer,
        kind: ArchiveError.Kind = .library,
        _ what: @autoclosure () -> String,
        entry: String? = nil
    ) throws -> Int32 {
        if status == ARCHIVE_OK || status == ARCHIVE_WARN || status == ARCHIVE_EOF { return status }
        throw ArchiveError(kind, "\(what()): \(errorString(archive))", entry: entry)
    }

    /// Copies a C string's bytes (without the NUL) so they outlive the libarchive entry.
    static func bytes(_ text: UnsafePointer<CChar>?) -> [UInt8]? {
        guard let text else { return nil }
        return Array(UnsafeRawBufferPointer(start: text, count: strlen(text)))
    }
}
