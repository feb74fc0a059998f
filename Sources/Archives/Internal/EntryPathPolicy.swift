/// Pure rules for entry names and link targets; no filesystem access, so unit-testable.
///
/// Backslashes count as separators when looking for `..` and absolute forms, because an
/// archive made on Windows (or crafted to look like one) must not smuggle `..\x` past us.
/// On disk a backslash stays an ordinary character; only `/` separates real components.
enum EntryPathPolicy {
    /// Why a name or target was refused; the extractor turns it into an `ArchiveError`.
    struct Violation: Error, Equatable {
        var kind: ArchiveError.Kind
        var reason: String
    }

    /// The longest single component most filesystems accept (NAME_MAX).
    static let maxComponentBytes = 255

    /// Validates an entry name and returns its normalised relative path ("" for the root).
    ///
    /// Normalising drops `.` and empty components (`./a//b` -> `a/b`), so duplicates are found
    /// however they are spelled.
    static func normalize(_ raw: [UInt8], maxLength: Int, maxDepth: Int) throws(Violation) -> String {
        let text = try decode(raw, what: "name")
        if isAbsolute(text) {
            throw Violation(kind: .unsafePath, reason: "has an absolute path")
        }
        if looseComponents(text).contains("..") {
            throw Violation(kind: .unsafePath, reason: "has a '..' path component")
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if parts.count > maxDepth {
            throw Violation(kind: .limitExceeded, reason: "is \(parts.count) directories deep (limit \(maxDepth))")
        }
        let path = parts.joined(separator: "/")
        if path.utf8.count > maxLength {
            throw Violation(kind: .limitExceeded, reason: "path is \(path.utf8.count) bytes long (limit \(maxLength))")
        }
        if parts.contains(where: { $0.utf8.count > maxComponentBytes }) {
            throw Violation(kind: .limitExceeded, reason: "has a path component over \(maxComponentBytes) bytes")
        }
        return path
    }

    /// Validates a symlink target's text: relative, clean, bounded. Resolution is separate.
    static func symlinkTarget(_ raw: [UInt8], maxLength: Int) throws(Violation) -> String {
        let text = try decode(raw, what: "symlink target")
        if text.isEmpty {
            throw Violation(kind: .unsafeLink, reason: "is a symlink with an empty target")
        }
        if isAbsolute(text) {
            throw Violation(kind: .unsafeLink, reason: "is a symlink to an absolute path, which points outside of the root folder")
        }
        if text.utf8.count > maxLength {
            throw Violation(kind: .limitExceeded, reason: "symlink target is \(text.utf8.count) bytes long (limit \(maxLength))")
        }
        return text
    }

    /// Components split on both `/` and `\`, for the conservative `..` and link resolution checks.
    static func looseComponents(_ text: String) -> [String] {
        text.split(omittingEmptySubsequences: true) { $0 == "/" || $0 == "\\" }.map(String.init)
    }

    /// `/x`, `\x`, `//x`, `C:\x`, `C:/x`, `C:x`: all absolute somewhere.
    static func isAbsolute(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first else { return false }
        if first == "/" || first == "\\" { return true }
        let scalars = Array(text.unicodeScalars.prefix(2))
        if scalars.count == 2, scalars[1] == ":", first.isASCII, first.properties.isAlphabetic { return true }
        return false
    }

    /// Valid UTF-8 with no control characters (NUL, newline, ...), or a violation.
    private static func decode(_ raw: [UInt8], what: String) throws(Violation) -> String {
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw Violation(kind: .unsafePath, reason: "\(what) is not valid UTF-8")
        }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw Violation(kind: .unsafePath, reason: "\(what) contains a control character (NUL, newline, ...)")
        }
        return text
    }
}
