/// Byte-level character classes of RFC 9110/9112, written as switches so the hot path needs no
/// lookup tables (a global table would cost a lazy-initialisation check on every access).
enum HTTPSyntax {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A

    /// `tchar` of a token (field names, methods, transfer codings).
    @inline(__always)
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    /// A byte allowed inside a field value: HTAB, SP, visible ASCII and obs-text; never CR, LF, NUL
    /// or another control character (so nothing can split a header line downstream).
    @inline(__always)
    static func isFieldValueChar(_ c: UInt8) -> Bool {
        c == htab || (c >= 0x20 && c != 0x7F)
    }

    /// A byte allowed in a request target: visible ASCII only.
    @inline(__always)
    static func isTargetChar(_ c: UInt8) -> Bool {
        c > 0x20 && c < 0x7F
    }

    @inline(__always)
    static func isWhitespace(_ c: UInt8) -> Bool {
        c == sp || c == htab
    }

    @inline(__always)
    static func lower(_ c: UInt8) -> UInt8 {
        (c >= 0x41 && c <= 0x5A) ? c | 0x20 : c
    }

    /// Case-insensitive comparison of `p[start..<start+len]` with a lower-case ASCII literal.
    @inline(__always)
    static func equalsLowercase(_ p: UnsafeRawBufferPointer, _ start: Int, _ len: Int, _ literal: StaticString) -> Bool {
        guard len == literal.utf8CodeUnitCount else { return false }
        let l = literal.utf8Start
        var i = 0
        while i < len {
            if lower(p[start + i]) != l[i] { return false }
            i += 1
        }
        return true
    }

    /// Case-insensitive comparison of two byte ranges.
    @inline(__always)
    static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ aStart: Int, _ b: UnsafeRawBufferPointer, _ bStart: Int, _ len: Int) -> Bool {
        var i = 0
        while i < len {
            if lower(a[aStart + i]) != lower(b[bStart + i]) { return false }
            i += 1
        }
        return true
    }

    /// Parses a non-negative decimal without sign, spaces or overflow; nil otherwise.
    @inline(__always)
    static func decimal(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int64? {
        guard end > start, end - start <= 18 else { return nil }
        var value: Int64 = 0
        var i = start
        while i < end {
            let c = p[i]
            guard c >= 0x30 && c <= 0x39 else { return nil }
            value = value * 10 + Int64(c - 0x30)
            i += 1
        }
        return value
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}
