import NIOCore
import PlatformModels
import Testing

@testable import AppRouter

@Suite struct HeadWriterTests {
    let requestID = RequestID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)

    func forwarded(_ text: String, client: String = "192.0.2.7", https: Bool = false) throws -> String {
        let head = try parseRequestHead(text).get()
        let table = snapshot([RouteTableEntry(routeGUID: "r", host: "app.example.com", path: "", backends: [backend("app-guid", 2, port: 1)])])
        let b = table.host(host: "app.example.com")!.routes[0].backends[0]
        var out = ByteBuffer()
        head.bytes.withUnsafeBytes { p in
            let target = RequestTarget.parse(p, head.line.targetStart, head.line.targetEnd)!
            HeadWriter.writeRequestHead(into: &out, p, line: head.line, target: target, fields: head.fields, facts: head.facts,
                                        listed: head.listed, upgrade: head.facts.connectionUpgrade && head.facts.upgradeField >= 0,
                                        client: Array(client.utf8), https: https, requestID: requestID)
        }
        HeadWriter.finishRequestHead(into: &out, backend: b)
        return String(buffer: out)
    }

    func lines(_ head: String) -> [String] {
        head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
    }

    @Test func addsForwardingHeadersAndKeepsTheRest() throws {
        let out = try forwarded("GET /p?q=1 HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\nUser-Agent: t\r\n\r\n")
        #expect(out.hasPrefix("GET /p?q=1 HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\nUser-Agent: t\r\n"))
        #expect(out.hasSuffix("\r\n\r\n"))
        let l = lines(out)
        #expect(l.contains("X-Forwarded-For: 192.0.2.7"))
        #expect(l.contains("X-Forwarded-Proto: http"))
        #expect(l.contains("X-Forwarded-Host: app.example.com"))
        #expect(l.contains("X-Vcap-Request-Id: 01234567-89ab-4def-bedc-ba9876543210"))
        #expect(l.contains("X-Request-Id: 01234567-89ab-4def-bedc-ba9876543210"))
        #expect(l.contains("X-CF-ApplicationID: app-guid"))
        #expect(l.contains("X-CF-InstanceIndex: 2"))
        #expect(l.contains("X-CF-InstanceID: app-guid-i2"))
    }

    /// D6, D7: hop-by-hop, Connection-listed and router-owned headers never pass as sent.
    @Test func stripsHopByHopListedAndSpoofedHeaders() throws {
        let out = try forwarded("""
            POST / HTTP/1.1\r
            Host: app.example.com\r
            Connection: keep-alive, X-Internal-Auth\r
            X-Internal-Auth: secret\r
            Keep-Alive: timeout=5\r
            Proxy-Connection: keep-alive\r
            TE: trailers\r
            Trailer: X-T\r
            Proxy-Authorization: Basic eA==\r
            Upgrade: h2c\r
            X-Forwarded-For: 10.0.0.1\r
            X-Forwarded-For: 10.0.0.2, 10.0.0.3\r
            X-Forwarded-Proto: https\r
            X-Forwarded-Host: evil.example.com\r
            X-Vcap-Request-Id: forged\r
            X-Request-Id: client-id\r
            X-CF-ApplicationID: forged\r
            X-CF-InstanceIndex: 99\r
            X-CF-InstanceID: forged\r
            X-Cf-App-Instance: app-guid:2\r
            Content-Length: 3\r
            \r\n
            """, https: true)
        let l = lines(out)
        for gone in ["Connection:", "X-Internal-Auth", "Keep-Alive", "Proxy-Connection", "TE:", "Trailer", "Proxy-Authorization",
                     "Upgrade", "X-Cf-App-Instance", "forged", "evil", "99"] {
            #expect(!out.contains(gone), "\(gone) passed through")
        }
        #expect(l.contains("X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7"))
        #expect(l.contains("X-Forwarded-Proto: https"))
        #expect(l.contains("X-Forwarded-Host: app.example.com"))
        #expect(l.contains("X-Request-Id: client-id"))
        #expect(l.filter { $0.hasPrefix("X-Request-Id") }.count == 1)
        #expect(l.contains("Content-Length: 3"))
    }

    @Test func largeHeadsFitTheReservedSpace() throws {
        let long = String(repeating: "a", count: 60) + ".example.com"
        var text = "GET /\(String(repeating: "p", count: 4000)) HTTP/1.1\r\nHost: \(long)\r\n"
        for i in 0..<50 { text += "X-Forwarded-For: 10.0.\(i).1, 10.0.\(i).2\r\n" }
        for i in 0..<50 { text += "X-Filler-\(i): \(String(repeating: "f", count: 200))\r\n" }
        let out = try forwarded(text + "\r\n")
        #expect(out.contains("X-Forwarded-Host: \(long)\r\n"))
        #expect(out.contains("X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.1.1"))
        #expect(out.contains("10.0.49.2, 192.0.2.7\r\n"))
        #expect(out.contains("X-Filler-49: "))
    }

    @Test func connectionListingCannotRemoveFraming() throws {
        let out = try forwarded("POST / HTTP/1.1\r\nHost: app.example.com\r\nConnection: Content-Length, Host\r\nContent-Length: 3\r\n\r\n")
        #expect(lines(out).contains("Content-Length: 3"))
        #expect(lines(out).contains("Host: app.example.com"))
    }

    @Test func canonicalContentLengthAndTargets() throws {
        let dup = try forwarded("POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n")
        #expect(lines(dup).filter { $0.hasPrefix("Content-Length") } == ["Content-Length: 4"])
        let absolute = try forwarded("GET http://app.example.com/x?y HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        #expect(absolute.hasPrefix("GET /x?y HTTP/1.1\r\n"))
        let bare = try forwarded("GET http://app.example.com HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        #expect(bare.hasPrefix("GET / HTTP/1.1\r\n"))
        let query = try forwarded("GET http://app.example.com?a HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        #expect(query.hasPrefix("GET /?a HTTP/1.1\r\n"))
        let http10 = try forwarded("GET / HTTP/1.0\r\nHost: app.example.com\r\n\r\n")
        #expect(http10.hasPrefix("GET / HTTP/1.1\r\n"))
    }

    @Test func upgradeRequestsKeepTheirUpgrade() throws {
        let out = try forwarded("GET /ws HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n")
        let l = lines(out)
        #expect(l.contains("Upgrade: websocket"))
        #expect(l.contains("Connection: Upgrade"))
        #expect(l.contains("Sec-WebSocket-Key: k"))
    }

    func response(_ text: String, close: Bool = false, dechunk: Bool = false, sticky: StickyInstruction? = nil) throws -> String {
        let bytes = Array(text.utf8)
        var out = ByteBuffer()
        try bytes.withUnsafeBytes { p in
            guard case .complete(let end) = HeadParser.scan(p, from: 0) else { throw HeadError.malformedStartLine }
            let (line, start) = try HeadParser.parseStatusLine(p, headEnd: end)
            var fields: [FieldSpan] = []
            var listed: [Range<Int>] = []
            try HeadParser.parseFields(p, from: start, headEnd: end, maxFields: 100, into: &fields)
            let facts = try MessageFacts.read(p, fields: fields, minorVersion: line.minorVersion, request: false, listed: &listed)
            HeadWriter.writeResponseHead(into: &out, p, status: line, fields: fields, facts: facts, listed: listed,
                                         close: close, dechunk: dechunk, sticky: sticky)
        }
        return String(buffer: out)
    }

    @Test func responseHeadsLoseConnectionScopedFields() throws {
        let out = try response("HTTP/1.0 200 OK\r\nServer: s\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nContent-Length: 2\r\n\r\n")
        #expect(out == "HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 2\r\n\r\n")
        let closing = try response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", close: true)
        #expect(closing == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        let dechunked = try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", close: true, dechunk: true)
        #expect(dechunked == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        let upgraded = try response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
        #expect(upgraded == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\nConnection: Upgrade\r\n\r\n")
    }

    @Test func stickySessionCookies() throws {
        let sticky = StickyInstruction(instanceGUID: Array("inst-1".utf8), repin: false, secure: false)
        let out = try response("HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=abc; Path=/shop; Max-Age=60; HttpOnly\r\nSet-Cookie: other=1\r\nContent-Length: 0\r\n\r\n", sticky: sticky)
        #expect(lines(out).contains("Set-Cookie: __VCAP_ID__=inst-1; Path=/shop; Max-Age=60; HttpOnly"))
        #expect(lines(out).filter { $0.contains("__VCAP_ID__") }.count == 1)
        let none = try response("HTTP/1.1 200 OK\r\nSet-Cookie: SESSION=abc\r\nContent-Length: 0\r\n\r\n", sticky: sticky)
        #expect(!none.contains("__VCAP_ID__"))
        let repin = StickyInstruction(instanceGUID: Array("inst-2".utf8), repin: true, secure: true)
        let moved = try response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", sticky: repin)
        #expect(lines(moved).contains("Set-Cookie: __VCAP_ID__=inst-2; Path=/; HttpOnly; Secure"))
    }

    @Test func sessionCookiesOfARequest() throws {
        let head = try parseRequestHead("GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; JSESSIONID=x; __VCAP_ID__=inst-9 ;b=2\r\n\r\n").get()
        let cookies = head.bytes.withUnsafeBytes { SessionCookies.read($0, fields: head.fields) }
        #expect(cookies.jsessionID)
        #expect(cookies.instance.map { String(decoding: head.bytes[$0], as: UTF8.self) } == "inst-9")
    }

    @Test func routerAnswersCarryTheirErrorCode() {
        var out = ByteBuffer()
        HeadWriter.writeAnswer(into: &out, .unknownRoute, close: false, headRequest: false)
        let text = String(buffer: out)
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(text.contains("\r\nX-Cf-RouterError: unknown_route\r\n"))
        let body = text.components(separatedBy: "\r\n\r\n")[1]
        #expect(text.contains("Content-Length: \(body.utf8.count)\r\n"))
        var head = ByteBuffer()
        HeadWriter.writeAnswer(into: &head, .endpointFailure, close: true, headRequest: true)
        #expect(String(buffer: head).hasSuffix("Connection: close\r\n\r\n"))
    }
}

@Suite struct AdmissionTests {
    let table = snapshot([
        RouteTableEntry(routeGUID: "r", host: "app.example.com", path: "", backends: [backend("app-guid", 0, port: 1), backend("app-guid", 1, port: 2)]),
        RouteTableEntry(routeGUID: "empty", host: "down.example.com", path: "", backends: []),
    ])

    func admit(_ text: String, table: RouteSnapshot? = nil) throws -> RouterPipeline.Decision {
        let head = try parseRequestHead(text).get()
        return head.bytes.withUnsafeBytes { p in
            RouterPipeline.admit(p, line: head.line, fields: head.fields, facts: head.facts, snapshot: table ?? self.table,
                                 balancer: Balancer(strategy: .roundRobin, maxInFlightPerBackend: 0), now: 0)
        }
    }

    func answer(_ text: String, table: RouteSnapshot? = nil) throws -> RouterAnswer? {
        if case .answer(let a) = try admit(text, table: table) { return a }
        return nil
    }

    func instance(_ text: String) throws -> Int? {
        if case .forward(let a) = try admit(text) { return a.backend.index }
        return nil
    }

    @Test func answersOfTheContract() throws {
        #expect(try answer("GET / HTTP/1.1\r\nHost: nope.example.com\r\n\r\n")?.code == .unknownRoute)
        #expect(try answer("GET / HTTP/1.1\r\nHost: nope.example.com\r\n\r\n")?.status == 404)
        #expect(try answer("GET / HTTP/1.1\r\nHost: down.example.com\r\n\r\n")?.status == 503)
        #expect(try answer("GET / HTTP/1.1\r\nHost: down.example.com\r\n\r\n")?.code == .noEndpoints)
        #expect(try answer("GET / HTTP/1.1\r\nHost: \r\n\r\n")?.code == .emptyHost)
        #expect(try answer("GET / HTTP/1.1\r\nHost: a b\r\n\r\n")?.code == .invalidHost)
        #expect(try answer("GET http://other.example.com/ HTTP/1.1\r\nHost: app.example.com\r\n\r\n")?.code == .invalidHost)
        #expect(try answer("GET http://APP.example.com:80/ HTTP/1.1\r\nHost: app.example.com\r\n\r\n") == nil)
        #expect(try answer("CONNECT app.example.com:443 HTTP/1.1\r\nHost: app.example.com\r\n\r\n")?.status == 400)
        #expect(try answer("GET * HTTP/1.1\r\nHost: app.example.com\r\n\r\n")?.status == 400)
        #expect(try answer("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n", table: .empty)?.code == .routeTableUnavailable)
    }

    @Test func instanceTargeting() throws {
        #expect(try instance("GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Cf-App-Instance: app-guid:1\r\n\r\n") == 1)
        #expect(try instance("GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Cf-App-Instance: APP-GUID:0\r\n\r\n") == 0)
        for bad in ["app-guid", "app-guid:", ":1", "app-guid:x", "app guid:1", "app-guid:1:2", "app-guid:-1"] {
            #expect(try answer("GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Cf-App-Instance: \(bad)\r\n\r\n")?.code == .invalidAppInstanceHeader, "\(bad)")
        }
        let unknown = try answer("GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Cf-App-Instance: app-guid:7\r\n\r\n")
        #expect(unknown?.status == 400)
        #expect(unknown?.code == .unknownRoute)
    }

    @Test func stickySessionsFollowTheCookie() throws {
        for _ in 0..<5 {
            #expect(try instance("GET / HTTP/1.1\r\nHost: app.example.com\r\nCookie: JSESSIONID=s; __VCAP_ID__=app-guid-i1\r\n\r\n") == 1)
        }
        guard case .forward(let missing) = try admit("GET / HTTP/1.1\r\nHost: app.example.com\r\nCookie: __VCAP_ID__=gone\r\n\r\n") else {
            Issue.record("not forwarded")
            return
        }
        #expect(missing.stickyMiss)
        table.host(host: "app.example.com")!.routes[0].backends[1].bench(until: 10)
        guard case .forward(let benched) = try admit("GET / HTTP/1.1\r\nHost: app.example.com\r\nCookie: __VCAP_ID__=app-guid-i1\r\n\r\n") else {
            Issue.record("not forwarded")
            return
        }
        #expect(benched.backend.index == 0)
        #expect(benched.stickyMiss)
    }
}

@Suite struct AccessLogTests {
    @Test func formatsOneLinePerRequest() throws {
        let table = snapshot([RouteTableEntry(routeGUID: "r", host: "a.b", path: "", backends: [backend("app-guid", 3, port: 8080)])])
        let b = table.host(host: "a.b")!.routes[0].backends[0]
        var fields = ByteBuffer()
        fields.writeString("a.b")
        fields.writeString("GET /x?\"q\" HTTP/1.1")
        fields.writeString("agent\u{1}\"x\"")
        var log = AccessLogBuffer()
        var clock = WallClockCache()
        let entry = AccessLogEntry(startWall: WallTime(seconds: 86_400 + 3661, milliseconds: 7), status: 200, bytesReceived: 12,
                                   bytesSent: 345, durationNanoseconds: 1_234_567, requestID: RequestID(high: 1, low: 2),
                                   backend: b, routerError: nil)
        log.append(entry, fields: fields, lengths: (3, 19, 9), client: Array("192.0.2.1".utf8), clock: &clock)
        let line = String(buffer: log.buffer)
        #expect(line == """
            a.b - [1970-01-02T01:01:01.007Z] "GET /x?\\"q\\" HTTP/1.1" 200 12 345 "agent\\x01\\"x\\"" "192.0.2.1" "127.0.0.1:8080" \
            vcap_request_id:"00000000-0000-4001-8000-000000000002" response_time:0.001234 app_id:"app-guid" app_index:"3" x_cf_routererror:"-"

            """)
        var noRoute = AccessLogBuffer()
        let miss = AccessLogEntry(startWall: WallTime(seconds: 0, milliseconds: 0), status: 404, bytesReceived: 0, bytesSent: 0,
                                  durationNanoseconds: 5_000, requestID: nil, backend: nil, routerError: .unknownRoute)
        noRoute.append(miss, fields: ByteBuffer(), lengths: (0, 0, 0), client: Array("::1".utf8), clock: &clock)
        #expect(String(buffer: noRoute.buffer).hasSuffix("app_id:\"-\" app_index:\"-\" x_cf_routererror:\"unknown_route\"\n"))
    }

    @Test func histogramBucketsFollowTheirBounds() {
        for (i, bound) in LoopMetrics.durationBounds.enumerated() {
            let ns = Int64((bound * 1e9).rounded())
            #expect(LoopMetrics.bucket(ns) == i, "\(bound)")
            #expect(LoopMetrics.bucket(ns + 1) == i + 1, "\(bound)")
        }
        #expect(LoopMetrics.bucket(0) == 0)
    }

    @Test func errorCodesAsBytesMatchTheirNames() {
        for code in RouterAnswer.Code.allCases {
            #expect(code.text.description == code.rawValue)
        }
    }

    @Test func numbers() {
        var b = ByteBuffer()
        AccessLogBuffer.decimal(0, into: &b)
        b.writeString(" ")
        AccessLogBuffer.decimal(9_876_543_210, into: &b)
        b.writeString(" ")
        AccessLogBuffer.seconds(12_000_345_678, into: &b)
        #expect(String(buffer: b) == "0 9876543210 12.000345")
    }

    @Test func requestIDsAreUUIDs() {
        var generator = RequestIDGenerator()
        var seen = Set<String>()
        for _ in 0..<1000 {
            var b = ByteBuffer()
            generator.make().write(into: &b)
            let text = String(buffer: b)
            #expect(text.count == 36)
            let parts = text.split(separator: "-")
            #expect(parts.map(\.count) == [8, 4, 4, 4, 12])
            #expect(parts[2].first == "4")
            #expect("89ab".contains(parts[3].first!))
            seen.insert(text)
        }
        #expect(seen.count == 1000)
    }
}
