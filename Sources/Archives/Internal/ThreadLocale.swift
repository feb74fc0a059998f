#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` with a UTF-8 `LC_CTYPE` on the calling thread only.
///
/// libarchive converts entry names between the archive's charset and the current locale; a
/// server process usually runs in the "C" locale, where every non-ASCII name fails to convert.
/// `uselocale` is per thread, so this neither changes nor races with the rest of the process.
/// libarchive caches the charset per archive object, so objects must be created inside `body`.
func withUTF8Locale<T>(_ body: () throws -> T) rethrows -> T {
    #if os(Linux)
    // LC_CTYPE_MASK is `1 << __LC_CTYPE` in glibc, a macro Swift does not import.
    guard let utf8 = newlocale(Int32(1) << LC_CTYPE, "C.UTF-8", nil) else { return try body() }
    let previous = uselocale(utf8)
    defer {
        uselocale(previous)
        freelocale(utf8)
    }
    return try body()
    #else
    // Darwin's "C" locale already passes UTF-8 names through unchanged.
    return try body()
    #endif
}
