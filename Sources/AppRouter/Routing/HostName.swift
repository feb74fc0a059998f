/// Why a Host header (or an absolute-form authority) cannot name a route.
enum HostError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case malformed
    case mismatch

    var description: String {
        switch self {
        case .empty: return "empty Host header"
        case .malformed: return "malformed Host header"
        case .mismatch: return "absolute-form request target names another host than the Host header"
        }
    }
}

/// Host header rules (SECURITY.md D1): the port is dropped, case does not matter, one trailing
/// dot is tolerated; anything that is not a DNS name, an IPv4 address or a bracketed IPv6
/// address is malformed.
enum HostName {
    static let maxLength = 253

    /// The bounds of the routing name inside `p[start..<end]` (port and trailing dot removed).
    /// Case is left as sent; lookups compare without case.
    static func routingName(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) throws(HostError) -> Range<Int> {
        guard end > start else { throw .empty }
        var nameEnd = end
        if p[start] == UInt8(ascii: "[") {
            var i = start + 1
            while i < end, p[i] != UInt8(ascii: "]") {
                let c = p[i]
                guard HTTPSyntax.hexValue(c) != nil || c == UInt8(ascii: ":") || c == UInt8(ascii: ".") else { throw .malformed }
                i += 1
            }
            guard i < end, i > start + 2 else { throw .malformed }
            nameEnd = i + 1
            if nameEnd < end { try port(p, nameEnd, end) }
            return start..<nameEnd
        }
        var i = start
        var labelLength = 0
        while i < end {
            let c = p[i]
            if c == UInt8(ascii: ":") {
                nameEnd = i
                try port(p, i, end)
                break
            }
            if c == UInt8(ascii: ".") {
                guard labelLength > 0 else { throw .malformed }
                labelLength = 0
            } else {
                switch c {
                case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "_"):
                    labelLength += 1
                    guard labelLength <= 63 else { throw .malformed }
                default:
                    throw .malformed
                }
            }
            i += 1
        }
        guard nameEnd > start else { throw .malformed }
        if p[nameEnd - 1] == UInt8(ascii: ".") { nameEnd -= 1 }
        guard nameEnd > start, nameEnd - start <= maxLength else { throw .malformed }
        return start..<nameEnd
    }

    /// `:port` with up to five digits and a value within 0...65535 (an empty port is allowed by
    /// RFC 3986 and treated as absent).
    private static func port(_ p: UnsafeRawBufferPointer, _ colon: Int, _ end: Int) throws(HostError) {
        guard p[colon] == UInt8(ascii: ":") else { throw .malformed }
        guard end - colon - 1 <= 5 else { throw .malformed }
        var value = 0
        var i = colon + 1
        while i < end {
            let c = p[i]
            guard c >= 0x30 && c <= 0x39 else { throw .malformed }
            value = value * 10 + Int(c - 0x30)
            i += 1
        }
        guard value <= 65535 else { throw .malformed }
    }

    /// FNV-1a over the lower-cased bytes: the route table's hash, computed on the request's own
    /// bytes so a lookup allocates nothing.
    @inline(__always)
    static func hash(_ p: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = range.lowerBound
        while i < range.upperBound {
            h = (h ^ UInt64(HTTPSyntax.lower(p[i]))) &* 0x0000_0100_0000_01B3
            i += 1
        }
        return h
    }
}

/// The request target split the way routing needs it (RFC 9112 3.2).
struct RequestTarget: Equatable, Sendable {
    /// Where the origin-form part (`/path?query`) starts and ends: forwarded as the target.
    var pathStart: Int
    var pathEnd: Int
    /// For absolute-form, the authority; nil for origin-form and asterisk-form.
    var authority: Range<Int>?
    /// `*` (OPTIONS only).
    var asterisk: Bool

    /// Splits `p[start..<end]`. Authority-form (CONNECT) and anything but origin-, absolute- and
    /// asterisk-form are malformed.
    static func parse(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> RequestTarget? {
        if p[start] == UInt8(ascii: "/") {
            return RequestTarget(pathStart: start, pathEnd: end, authority: nil, asterisk: false)
        }
        if end - start == 1 && p[start] == UInt8(ascii: "*") {
            return RequestTarget(pathStart: start, pathEnd: end, authority: nil, asterisk: true)
        }
        var i = start
        if HTTPSyntax.equalsLowercase(p, start, min(7, end - start), "http://") {
            i += 7
        } else if HTTPSyntax.equalsLowercase(p, start, min(8, end - start), "https://") {
            i += 8
        } else {
            return nil
        }
        let authorityStart = i
        while i < end, p[i] != UInt8(ascii: "/"), p[i] != UInt8(ascii: "?") {
            // Userinfo in a request target is not allowed (RFC 9110 4.2.4).
            if p[i] == UInt8(ascii: "@") || p[i] == UInt8(ascii: "#") { return nil }
            i += 1
        }
        guard i > authorityStart else { return nil }
        return RequestTarget(pathStart: i, pathEnd: end, authority: authorityStart..<i, asterisk: false)
    }
}
