/// Why a syntactically valid request head is still refused before routing.
enum FramingError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingHost
    case duplicateHost
    case contentLengthWithTransferEncoding
    case invalidContentLength
    case conflictingContentLength
    case unsupportedTransferEncoding
    case transferEncodingInHTTP10

    var description: String {
        switch self {
        case .missingHost: return "no Host header"
        case .duplicateHost: return "more than one Host header"
        case .contentLengthWithTransferEncoding: return "Content-Length together with Transfer-Encoding"
        case .invalidContentLength: return "malformed Content-Length"
        case .conflictingContentLength: return "differing Content-Length values"
        case .unsupportedTransferEncoding: return "Transfer-Encoding other than chunked"
        case .transferEncodingInHTTP10: return "Transfer-Encoding in an HTTP/1.0 message"
        }
    }
}

/// A message's framing and connection facts, read from its fields (RFC 9112 6, 9.6).
struct MessageFacts: Sendable, Equatable {
    /// Body length when framed by Content-Length, -1 otherwise.
    var contentLength: Int64 = -1
    /// The Content-Length fields were several (identical) or a list: re-emit one canonical field.
    var contentLengthNeedsRewrite = false
    var chunked = false
    /// `Connection: close` was listed.
    var close = false
    /// `Connection: keep-alive` was listed.
    var keepAlive = false
    /// `Connection: upgrade` was listed.
    var connectionUpgrade = false
    /// Some other field name was listed in `Connection` (those fields must be dropped).
    var listsOtherFields = false
    /// Index of the Host field, -1 when absent.
    var hostField = -1
    var upgradeField = -1
    var appInstanceField = -1
    var userAgentField = -1
    var requestIDPresent = false
    var cookiePresent = false
    var setCookiePresent = false

    /// Reads framing and connection facts; `request` adds the Host rules. Field names listed
    /// in `Connection` are collected in `listed` as ranges into the head.
    static func read(_ p: UnsafeRawBufferPointer, fields: [FieldSpan], minorVersion: UInt8, request: Bool,
                     listed: inout [Range<Int>]) throws(FramingError) -> MessageFacts {
        var facts = MessageFacts()
        listed.removeAll(keepingCapacity: true)
        var transferEncodingFields = 0
        var contentLengthFields = 0
        for index in fields.indices {
            let field = fields[index]
            switch field.kind {
            case .other:
                continue
            case .host:
                guard facts.hostField < 0 else { throw .duplicateHost }
                facts.hostField = index
            case .contentLength:
                contentLengthFields += 1
                var elements = 0
                var invalid = false
                var conflict = false
                var value: Int64 = -1
                forEachListElement(p, field.valueStart, field.valueEnd) { s, e in
                    elements += 1
                    guard let v = HTTPSyntax.decimal(p, s, e) else { invalid = true; return }
                    if value >= 0 && v != value { conflict = true }
                    value = v
                }
                if invalid || value < 0 { throw .invalidContentLength }
                if conflict { throw .conflictingContentLength }
                let sawComma = elements > 1
                if facts.contentLength >= 0 && facts.contentLength != value { throw .conflictingContentLength }
                facts.contentLength = value
                if sawComma || contentLengthFields > 1 { facts.contentLengthNeedsRewrite = true }
            case .transferEncoding:
                transferEncodingFields += 1
                guard transferEncodingFields == 1,
                      HTTPSyntax.equalsLowercase(p, field.valueStart, field.valueEnd - field.valueStart, "chunked")
                else { throw .unsupportedTransferEncoding }
                facts.chunked = true
            case .connection:
                forEachListElement(p, field.valueStart, field.valueEnd) { s, e in
                    let n = e - s
                    if HTTPSyntax.equalsLowercase(p, s, n, "close") {
                        facts.close = true
                    } else if HTTPSyntax.equalsLowercase(p, s, n, "keep-alive") {
                        facts.keepAlive = true
                    } else if HTTPSyntax.equalsLowercase(p, s, n, "upgrade") {
                        facts.connectionUpgrade = true
                    } else if n > 0 {
                        facts.listsOtherFields = true
                        listed.append(s..<e)
                    }
                }
            case .upgrade:
                facts.upgradeField = index
            case .xCFAppInstance:
                facts.appInstanceField = index
            case .userAgent:
                facts.userAgentField = index
            case .xRequestID:
                facts.requestIDPresent = true
            case .cookie:
                facts.cookiePresent = true
            case .setCookie:
                facts.setCookiePresent = true
            default:
                continue
            }
        }
        if facts.chunked {
            if facts.contentLength >= 0 { throw .contentLengthWithTransferEncoding }
            if minorVersion == 0 { throw .transferEncodingInHTTP10 }
        }
        if request && facts.hostField < 0 { throw .missingHost }
        return facts
    }

    /// Whether the field at `index` is named in the message's `Connection` header.
    static func isListed(_ p: UnsafeRawBufferPointer, _ field: FieldSpan, _ listed: [Range<Int>]) -> Bool {
        let n = field.nameEnd - field.nameStart
        for range in listed where range.count == n {
            if HTTPSyntax.equalsIgnoringCase(p, field.nameStart, p, range.lowerBound, n) { return true }
        }
        return false
    }
}

/// Calls `body` with the bounds of each comma-separated element of `p[start..<end]`, trimmed of
/// optional whitespace; empty elements are reported as empty ranges.
@inline(__always)
func forEachListElement(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ body: (Int, Int) -> Void) {
    var i = start
    while i <= end {
        var s = i
        while s < end, HTTPSyntax.isWhitespace(p[s]) { s += 1 }
        var e = s
        while e < end, p[e] != UInt8(ascii: ",") { e += 1 }
        let next = e + 1
        while e > s, HTTPSyntax.isWhitespace(p[e - 1]) { e -= 1 }
        body(s, e)
        i = next
    }
}
