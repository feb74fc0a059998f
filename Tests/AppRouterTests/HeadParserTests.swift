import Testing

@testable import AppRouter

/// The outcome of parsing one request head given as text.
struct ParsedRequestHead {
    var line: RequestLine
    var fields: [FieldSpan]
    var facts: MessageFacts
    var listed: [Range<Int>]
    var bytes: [UInt8]

    func field(_ kind: FieldKind) -> String? {
        guard let f = fields.first(where: { $0.kind == kind }) else { return nil }
        return String(decoding: bytes[f.valueStart..<f.valueEnd], as: UTF8.self)
    }
}

enum RequestParseFailure: Error, Equatable {
    case incomplete
    case head(HeadError)
    case framing(FramingError)
}

/// Parses a whole request head the way the router does (scan, syntax, framing facts).
func parseRequestHead(_ text: String, maxFields: Int = 1000) -> Result<ParsedRequestHead, RequestParseFailure> {
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBytes { p -> Result<ParsedRequestHead, RequestParseFailure> in
        let start = HeadParser.skipLeadingEmptyLines(p)
        guard case .complete(let end) = HeadParser.scan(p, from: start) else { return .failure(.incomplete) }
        var fields: [FieldSpan] = []
        var listed: [Range<Int>] = []
        let line: RequestLine
        do throws(HeadError) {
            let (l, fieldsStart) = try HeadParser.parseRequestLine(p, start: start, headEnd: end)
            line = l
            try HeadParser.parseFields(p, from: fieldsStart, headEnd: end, maxFields: maxFields, into: &fields)
        } catch {
            return .failure(.head(error))
        }
        do throws(FramingError) {
            let facts = try MessageFacts.read(p, fields: fields, minorVersion: line.minorVersion, request: true, listed: &listed)
            return .success(ParsedRequestHead(line: line, fields: fields, facts: facts, listed: listed, bytes: bytes))
        } catch {
            return .failure(.framing(error))
        }
    }
}

func failure(_ result: Result<ParsedRequestHead, RequestParseFailure>) -> RequestParseFailure? {
    if case .failure(let f) = result { return f }
    return nil
}

@Suite struct HeadParserTests {
    @Test func parsesAnOrdinaryRequest() throws {
        let head = try parseRequestHead("GET /a/b?c=d HTTP/1.1\r\nHost: App.Example.com:8080\r\nUser-Agent: curl/8\r\nX-Other:  spaced value  \r\n\r\n").get()
        #expect(head.line.minorVersion == 1)
        #expect(String(decoding: head.bytes[head.line.targetStart..<head.line.targetEnd], as: UTF8.self) == "/a/b?c=d")
        #expect(head.field(.host) == "App.Example.com:8080")
        #expect(head.field(.userAgent) == "curl/8")
        let other = try #require(head.fields.first { $0.kind == .other })
        #expect(String(decoding: head.bytes[other.valueStart..<other.valueEnd], as: UTF8.self) == "spaced value")
        #expect(head.facts.contentLength == -1)
        #expect(!head.facts.chunked)
        #expect(!head.facts.close)
    }

    @Test func scanFindsTheEndIncrementally() {
        let text = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\nrest".utf8)
        text.withUnsafeBytes { all in
            var resume = 0
            var found: Int?
            for n in 1...all.count {
                let p = UnsafeRawBufferPointer(rebasing: all[0..<n])
                switch HeadParser.scan(p, from: resume) {
                case .incomplete(let at): resume = at
                case .complete(let end): found = end
                }
                if found != nil { break }
            }
            #expect(found == text.count - 4)
        }
    }

    @Test func skipsEmptyLinesBeforeARequest() throws {
        let head = try parseRequestHead("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").get()
        #expect(head.line.start == 4)
    }

    /// SECURITY.md D3, D10: every framing or syntax shape that could desynchronise a proxy.
    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", RequestParseFailure.framing(.contentLengthWithTransferEncoding)),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", .framing(.contentLengthWithTransferEncoding)),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", .framing(.unsupportedTransferEncoding)),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", .framing(.unsupportedTransferEncoding)),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .framing(.unsupportedTransferEncoding)),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-encoding : chunked\r\n\r\n", .head(.invalidFieldName)),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .framing(.conflictingContentLength)),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", .framing(.conflictingContentLength)),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", .framing(.invalidContentLength)),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", .framing(.invalidContentLength)),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", .framing(.invalidContentLength)),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", .framing(.invalidContentLength)),
        ("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", .framing(.transferEncodingInHTTP10)),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n  b\r\n\r\n", .head(.obsoleteLineFolding)),
        ("GET / HTTP/1.1\r\nHost: a\r\n\tX: b\r\n\r\n", .head(.obsoleteLineFolding)),
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", .head(.bareLineFeed)),
        ("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", .head(.bareLineFeed)),
        ("GET / HTTP/1.1\r\nHost: a\r\n\n", .head(.bareLineFeed)),
        ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", .head(.bareCarriageReturn)),
        ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", .head(.invalidFieldValue)),
        ("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", .head(.invalidFieldName)),
        ("GET / HTTP/1.1\r\n: a\r\n\r\n", .head(.invalidFieldName)),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", .head(.unsupportedVersion)),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", .head(.unsupportedVersion)),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .head(.unsupportedVersion)),
        ("GET /\r\n\r\n", .head(.unsupportedVersion)),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .head(.malformedStartLine)),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .head(.malformedStartLine)),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", .head(.malformedStartLine)),
        ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", .head(.malformedStartLine)),
        ("GET / HTTP/1.1\r\n\r\n", .framing(.missingHost)),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .framing(.duplicateHost)),
        ("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", .framing(.duplicateHost)),
    ])
    func refusesAmbiguousOrMalformedHeads(_ text: String, _ expected: RequestParseFailure) {
        #expect(failure(parseRequestHead(text)) == expected)
    }

    @Test func identicalContentLengthsAreOneValueToRewrite() throws {
        let head = try parseRequestHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").get()
        #expect(head.facts.contentLength == 5)
        #expect(head.facts.contentLengthNeedsRewrite)
        let list = try parseRequestHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n").get()
        #expect(list.facts.contentLength == 7)
        #expect(list.facts.contentLengthNeedsRewrite)
        let single = try parseRequestHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n").get()
        #expect(!single.facts.contentLengthNeedsRewrite)
    }

    @Test func connectionTokensAndListedFields() throws {
        let head = try parseRequestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Internal-Auth, Upgrade\r\nUpgrade: websocket\r\n\r\n").get()
        #expect(head.facts.keepAlive)
        #expect(head.facts.connectionUpgrade)
        #expect(head.facts.upgradeField >= 0)
        #expect(head.listed.count == 1)
        let closing = try parseRequestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n").get()
        #expect(closing.facts.close)
    }

    @Test func fieldCountLimit() {
        var text = "GET / HTTP/1.1\r\nHost: a\r\n"
        for i in 0..<20 { text += "X-\(i): v\r\n" }
        #expect(failure(parseRequestHead(text + "\r\n", maxFields: 10)) == .head(.tooManyFields))
        #expect(failure(parseRequestHead(text + "\r\n", maxFields: 30)) == nil)
    }

    @Test func classifiesTheFieldsTheRouterOwns() {
        let names: [(String, FieldKind)] = [
            ("HOST", .host), ("content-length", .contentLength), ("Transfer-Encoding", .transferEncoding),
            ("Connection", .connection), ("Keep-Alive", .keepAlive), ("Proxy-Connection", .proxyConnection),
            ("TE", .te), ("Trailer", .trailer), ("Upgrade", .upgrade), ("Proxy-Authorization", .proxyAuthorization),
            ("X-Forwarded-For", .xForwardedFor), ("x-forwarded-proto", .xForwardedProto), ("X-Forwarded-Host", .xForwardedHost),
            ("X-Vcap-Request-Id", .xVcapRequestID), ("X-Request-Id", .xRequestID), ("X-CF-ApplicationID", .xCFApplicationID),
            ("X-CF-InstanceIndex", .xCFInstanceIndex), ("X-CF-InstanceID", .xCFInstanceID), ("X-Cf-App-Instance", .xCFAppInstance),
            ("Cookie", .cookie), ("Set-Cookie", .setCookie), ("User-Agent", .userAgent), ("X-Custom", .other), ("Hosts", .other),
        ]
        for (name, kind) in names {
            let bytes = Array(name.utf8)
            let got = bytes.withUnsafeBytes { FieldKind.classify($0, 0, bytes.count) }
            #expect(got == kind, "\(name)")
        }
    }

    @Test func parsesStatusLines() throws {
        let text = Array("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n".utf8)
        try text.withUnsafeBytes { p in
            guard case .complete(let end) = HeadParser.scan(p, from: 0) else { Issue.record("incomplete"); return }
            let (line, _) = try HeadParser.parseStatusLine(p, headEnd: end)
            #expect(line.status == 200)
            #expect(line.minorVersion == 1)
            #expect(String(decoding: p[line.codeStart..<line.lineEnd], as: UTF8.self) == "200 OK\r\n")
        }
        for bad in ["HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n", "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n", "ICY 200 OK\r\n\r\n"] {
            let bytes = Array(bad.utf8)
            bytes.withUnsafeBytes { p in
                guard case .complete(let end) = HeadParser.scan(p, from: 0) else { Issue.record("incomplete \(bad)"); return }
                #expect(throws: HeadError.self, "\(bad)") { try HeadParser.parseStatusLine(p, headEnd: end) }
            }
        }
        // No reason phrase at all is accepted.
        let bare = Array("HTTP/1.1 204\r\n\r\n".utf8)
        try bare.withUnsafeBytes { p in
            let (line, _) = try HeadParser.parseStatusLine(p, headEnd: p.count)
            #expect(line.status == 204)
        }
    }
}
