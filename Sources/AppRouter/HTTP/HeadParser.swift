import Glibc

/// One header line of a parsed head, as offsets into the head's bytes. The line runs from
/// `nameStart` to `lineEnd` (just past its CRLF), so runs of kept lines copy as one block.
struct FieldSpan: Sendable {
    var nameStart: Int
    var nameEnd: Int
    var valueStart: Int
    var valueEnd: Int
    var lineEnd: Int
    var kind: FieldKind
}

/// Why a head (request or response) is not acceptable HTTP/1.1. Every case is a framing or
/// syntax fault: the connection is answered (400 or 431) and closed, never resynchronised.
enum HeadError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedStartLine
    case unsupportedVersion
    case bareLineFeed
    case bareCarriageReturn
    case obsoleteLineFolding
    case invalidFieldName
    case invalidFieldValue
    case tooManyFields
    case tooLarge

    var description: String {
        switch self {
        case .malformedStartLine: return "malformed start line"
        case .unsupportedVersion: return "unsupported HTTP version (only HTTP/1.0 and HTTP/1.1)"
        case .bareLineFeed: return "line ended by LF without CR"
        case .bareCarriageReturn: return "CR not followed by LF"
        case .obsoleteLineFolding: return "obsolete line folding"
        case .invalidFieldName: return "invalid header field name"
        case .invalidFieldValue: return "control character in a header field value"
        case .tooManyFields: return "too many header fields"
        case .tooLarge: return "header block larger than the limit"
        }
    }
}

/// The request line: method `[0, methodEnd)`, target `[targetStart, targetEnd)`, version 1.x.
struct RequestLine: Sendable, Equatable {
    var start: Int
    var methodEnd: Int
    var targetStart: Int
    var targetEnd: Int
    var minorVersion: UInt8
}

/// The status line: code, version 1.x, and where the code starts (`"200 OK"` is copied from
/// there to the line end).
struct StatusLine: Sendable, Equatable {
    var status: Int
    var minorVersion: UInt8
    var codeStart: Int
    var lineEnd: Int
}

/// Strict HTTP/1.1 head parsing over contiguous bytes: only CRLF line ends, no obsolete line
/// folding, no whitespace before a field's colon, no control characters in values.
enum HeadParser {
    /// Where a search for the end of a head stands.
    enum Scan: Equatable {
        /// The head ends just before `end` (past the empty line).
        case complete(end: Int)
        /// Not there yet; continue searching from `resume` once more bytes arrived.
        case incomplete(resume: Int)
    }

    /// Index after the empty lines (CRLF) a client may send before a request (RFC 9112 2.2).
    static func skipLeadingEmptyLines(_ p: UnsafeRawBufferPointer) -> Int {
        var i = 0
        while i + 1 < p.count, p[i] == HTTPSyntax.cr, p[i + 1] == HTTPSyntax.lf { i += 2 }
        return i
    }

    /// Finds the end of a head: an LF followed by CRLF (or by a bare LF, which the full parse
    /// then rejects). Searching resumes where the previous call stopped, so a head that arrives
    /// byte by byte costs linear time.
    static func scan(_ p: UnsafeRawBufferPointer, from: Int) -> Scan {
        guard let base = p.baseAddress else { return .incomplete(resume: from) }
        var i = from
        while i < p.count {
            guard let hit = memchr(base + i, Int32(HTTPSyntax.lf), p.count - i) else {
                return .incomplete(resume: p.count)
            }
            let at = base.distance(to: UnsafeRawPointer(hit))
            if at + 1 >= p.count { return .incomplete(resume: at) }
            if p[at + 1] == HTTPSyntax.lf { return .complete(end: at + 2) }
            if p[at + 1] == HTTPSyntax.cr {
                if at + 2 >= p.count { return .incomplete(resume: at) }
                if p[at + 2] == HTTPSyntax.lf { return .complete(end: at + 3) }
            }
            i = at + 1
        }
        return .incomplete(resume: p.count)
    }

    /// Parses `METHOD SP target SP HTTP/1.x CRLF` starting at `start`; returns the line and the
    /// index where the fields begin.
    static func parseRequestLine(_ p: UnsafeRawBufferPointer, start: Int, headEnd: Int) throws(HeadError) -> (RequestLine, Int) {
        var i = start
        while i < headEnd, HTTPSyntax.isTokenChar(p[i]) { i += 1 }
        let methodEnd = i
        guard methodEnd > start, methodEnd - start <= 32, i < headEnd, p[i] == HTTPSyntax.sp else {
            throw .malformedStartLine
        }
        i += 1
        let targetStart = i
        while i < headEnd, HTTPSyntax.isTargetChar(p[i]) { i += 1 }
        let targetEnd = i
        guard targetEnd > targetStart else { throw .malformedStartLine }
        guard i < headEnd else { throw .malformedStartLine }
        if p[i] == HTTPSyntax.cr || p[i] == HTTPSyntax.lf {
            // HTTP/0.9 simple request: no version at all.
            throw .unsupportedVersion
        }
        guard p[i] == HTTPSyntax.sp else { throw .malformedStartLine }
        i += 1
        let minor = try version(p, at: i, headEnd: headEnd)
        i += 8
        try lineEnd(p, at: i, headEnd: headEnd)
        return (RequestLine(start: start, methodEnd: methodEnd, targetStart: targetStart, targetEnd: targetEnd,
                            minorVersion: minor), i + 2)
    }

    /// Parses `HTTP/1.x SP 3DIGIT [SP reason] CRLF`; returns the line and where the fields begin.
    static func parseStatusLine(_ p: UnsafeRawBufferPointer, headEnd: Int) throws(HeadError) -> (StatusLine, Int) {
        let minor = try version(p, at: 0, headEnd: headEnd)
        var i = 8
        guard i + 4 <= headEnd, p[i] == HTTPSyntax.sp else { throw .malformedStartLine }
        i += 1
        let codeStart = i
        var status = 0
        for _ in 0..<3 {
            let c = p[i]
            guard c >= 0x30 && c <= 0x39 else { throw .malformedStartLine }
            status = status * 10 + Int(c - 0x30)
            i += 1
        }
        guard status >= 100 else { throw .malformedStartLine }
        if p[i] == HTTPSyntax.sp {
            i += 1
            while i < headEnd, p[i] != HTTPSyntax.cr, p[i] != HTTPSyntax.lf {
                guard HTTPSyntax.isFieldValueChar(p[i]) else { throw .malformedStartLine }
                i += 1
            }
        }
        try lineEnd(p, at: i, headEnd: headEnd)
        return (StatusLine(status: status, minorVersion: minor, codeStart: codeStart, lineEnd: i + 2), i + 2)
    }

    /// Parses field lines from `from` to the empty line that ends the head at `headEnd`.
    static func parseFields(_ p: UnsafeRawBufferPointer, from: Int, headEnd: Int, maxFields: Int,
                            into fields: inout [FieldSpan]) throws(HeadError) {
        fields.removeAll(keepingCapacity: true)
        var i = from
        while true {
            guard i < headEnd else { throw .malformedStartLine }
            let c = p[i]
            if c == HTTPSyntax.cr {
                try lineEnd(p, at: i, headEnd: headEnd)
                return
            }
            if c == HTTPSyntax.lf { throw .bareLineFeed }
            if HTTPSyntax.isWhitespace(c) { throw .obsoleteLineFolding }
            let nameStart = i
            while i < headEnd, HTTPSyntax.isTokenChar(p[i]) { i += 1 }
            guard i > nameStart, i < headEnd, p[i] == HTTPSyntax.colon else { throw .invalidFieldName }
            let nameEnd = i
            i += 1
            while i < headEnd, HTTPSyntax.isWhitespace(p[i]) { i += 1 }
            let valueStart = i
            var valueEnd = i
            while i < headEnd {
                let v = p[i]
                if v == HTTPSyntax.cr { break }
                if v == HTTPSyntax.lf { throw .bareLineFeed }
                guard HTTPSyntax.isFieldValueChar(v) else { throw .invalidFieldValue }
                i += 1
                if !HTTPSyntax.isWhitespace(v) { valueEnd = i }
            }
            try lineEnd(p, at: i, headEnd: headEnd)
            i += 2
            guard fields.count < maxFields else { throw .tooManyFields }
            fields.append(FieldSpan(nameStart: nameStart, nameEnd: nameEnd, valueStart: valueStart, valueEnd: valueEnd,
                                    lineEnd: i, kind: FieldKind.classify(p, nameStart, nameEnd - nameStart)))
        }
    }

    @inline(__always)
    private static func version(_ p: UnsafeRawBufferPointer, at i: Int, headEnd: Int) throws(HeadError) -> UInt8 {
        guard i + 8 <= headEnd,
              p[i] == UInt8(ascii: "H"), p[i + 1] == UInt8(ascii: "T"), p[i + 2] == UInt8(ascii: "T"),
              p[i + 3] == UInt8(ascii: "P"), p[i + 4] == UInt8(ascii: "/")
        else { throw .malformedStartLine }
        guard p[i + 5] == UInt8(ascii: "1"), p[i + 6] == UInt8(ascii: "."),
              p[i + 7] == UInt8(ascii: "0") || p[i + 7] == UInt8(ascii: "1")
        else { throw .unsupportedVersion }
        return p[i + 7] - 0x30
    }

    @inline(__always)
    private static func lineEnd(_ p: UnsafeRawBufferPointer, at i: Int, headEnd: Int) throws(HeadError) {
        guard i < headEnd else { throw .malformedStartLine }
        if p[i] == HTTPSyntax.lf { throw .bareLineFeed }
        guard p[i] == HTTPSyntax.cr else { throw .malformedStartLine }
        guard i + 1 < headEnd, p[i + 1] == HTTPSyntax.lf else { throw .bareCarriageReturn }
    }
}
