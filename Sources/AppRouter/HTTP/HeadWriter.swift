import NIOCore

/// What a response head needs for sticky sessions.
struct StickyInstruction: Sendable {
    /// The instance that served the request.
    var instanceGUID: [UInt8]
    /// The request carried `__VCAP_ID__` for an instance that could not take it: re-pin the
    /// session even if the answer sets no `JSESSIONID`.
    var repin: Bool
    var secure: Bool
}

/// Writes the heads the router sends: the forwarded request and the answer to the client.
/// Runs of header lines that pass unchanged are copied as one block; only the fields the
/// router owns are written anew.
enum HeadWriter {
    /// Writes the forwarded request head up to (not including) the instance's own headers and
    /// the empty line, which `finishRequestHead` appends per attempt.
    static func writeRequestHead(into out: inout ByteBuffer, _ p: UnsafeRawBufferPointer, line: RequestLine,
                                 target: RequestTarget, fields: [FieldSpan], facts: MessageFacts, listed: [Range<Int>],
                                 upgrade: Bool, client: [UInt8], https: Bool, requestID: RequestID) {
        // Everything copied comes from the head (X-Forwarded-For values at most twice).
        let headEnd = fields.last?.lineEnd ?? line.targetEnd
        let bound = 2 * (headEnd - line.start) + client.count + 512
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { raw in
            var w = LineWriter(raw)
            w.put(UnsafeRawBufferPointer(rebasing: p[line.start..<line.methodEnd]))
            w.put(HTTPSyntax.sp)
            if target.asterisk {
                w.put(UInt8(ascii: "*"))
            } else {
                if target.pathStart == target.pathEnd || p[target.pathStart] != UInt8(ascii: "/") {
                    w.put(UInt8(ascii: "/"))
                }
                w.put(UnsafeRawBufferPointer(rebasing: p[target.pathStart..<target.pathEnd]))
            }
            w.put(" HTTP/1.1\r\n")

            var runStart = fields.first?.nameStart ?? 0
            var forwardedFor = false
            for field in fields {
                let drop: Bool
                switch field.kind {
                case .other, .xRequestID, .cookie, .userAgent, .setCookie:
                    drop = facts.listsOtherFields && MessageFacts.isListed(p, field, listed)
                case .host, .transferEncoding:
                    drop = false
                case .contentLength:
                    drop = facts.contentLengthNeedsRewrite
                case .upgrade:
                    drop = !upgrade
                case .xForwardedFor:
                    forwardedFor = true
                    drop = true
                default:
                    drop = field.kind.droppedFromRequests
                }
                if drop {
                    w.put(UnsafeRawBufferPointer(rebasing: p[runStart..<max(runStart, field.nameStart)]))
                    runStart = field.lineEnd
                }
            }
            if let last = fields.last, runStart < last.lineEnd {
                w.put(UnsafeRawBufferPointer(rebasing: p[runStart..<last.lineEnd]))
            }

            if facts.contentLengthNeedsRewrite {
                w.put("Content-Length: ")
                w.decimal(facts.contentLength)
                w.put("\r\n")
            }
            if upgrade { w.put("Connection: Upgrade\r\n") }
            w.put("X-Forwarded-For: ")
            if forwardedFor {
                for field in fields where field.kind == .xForwardedFor && field.valueEnd > field.valueStart {
                    w.put(UnsafeRawBufferPointer(rebasing: p[field.valueStart..<field.valueEnd]))
                    w.put(", ")
                }
            }
            w.put(client)
            w.put(https ? "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: " : "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ")
            if facts.hostField >= 0 {
                let host = fields[facts.hostField]
                w.put(UnsafeRawBufferPointer(rebasing: p[host.valueStart..<host.valueEnd]))
            }
            w.put("\r\nX-Vcap-Request-Id: ")
            w.requestID(requestID)
            if !facts.requestIDPresent {
                w.put("\r\nX-Request-Id: ")
                w.requestID(requestID)
            }
            w.put("\r\n")
            return w.offset
        }
    }

    /// Appends the headers naming the chosen instance and the empty line.
    @inline(__always)
    static func finishRequestHead(into out: inout ByteBuffer, backend: Backend) {
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: backend.headerBlock.count + 2) { raw in
            var w = LineWriter(raw)
            w.put(backend.headerBlock)
            w.put("\r\n")
            return w.offset
        }
    }

    /// Writes the head of a backend's answer as the client gets it: HTTP/1.1 status line, the
    /// backend's fields minus connection-scoped ones, the router's `Connection` and sticky
    /// session cookie.
    static func writeResponseHead(into out: inout ByteBuffer, _ p: UnsafeRawBufferPointer, status: StatusLine,
                                  fields: [FieldSpan], facts: MessageFacts, listed: [Range<Int>],
                                  close: Bool, dechunk: Bool, sticky: StickyInstruction?) {
        // Copied bytes come from the head; each sticky cookie repeats one Set-Cookie's attributes.
        let headEnd = fields.last?.lineEnd ?? status.lineEnd
        let bound = 2 * headEnd + 512 + (sticky.map { ($0.instanceGUID.count + 32) * (fields.count + 1) } ?? 0)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { raw in
            var w = LineWriter(raw)
            w.put("HTTP/1.1 ")
            w.put(UnsafeRawBufferPointer(rebasing: p[status.codeStart..<status.lineEnd]))
            let switching = status.status == 101
            var runStart = fields.first?.nameStart ?? 0
            for field in fields {
                let drop: Bool
                switch field.kind {
                case .contentLength:
                    drop = facts.contentLengthNeedsRewrite
                case .transferEncoding:
                    drop = dechunk
                case .host:
                    drop = false
                case .upgrade:
                    drop = !switching
                default:
                    drop = field.kind.droppedFromResponses
                        || (facts.listsOtherFields && MessageFacts.isListed(p, field, listed))
                }
                if drop {
                    w.put(UnsafeRawBufferPointer(rebasing: p[runStart..<max(runStart, field.nameStart)]))
                    runStart = field.lineEnd
                }
            }
            if let last = fields.last, runStart < last.lineEnd {
                w.put(UnsafeRawBufferPointer(rebasing: p[runStart..<last.lineEnd]))
            }
            if facts.contentLengthNeedsRewrite && !dechunk {
                w.put("Content-Length: ")
                w.decimal(facts.contentLength)
                w.put("\r\n")
            }
            if switching {
                w.put("Connection: Upgrade\r\n")
            } else if close {
                w.put("Connection: close\r\n")
            }
            if let sticky { writeStickyCookies(into: &w, p, fields: fields, facts: facts, sticky: sticky) }
            w.put("\r\n")
            return w.offset
        }
    }

    /// For every `Set-Cookie: JSESSIONID=...` adds `__VCAP_ID__=<instance>` with the same
    /// attributes; re-pins a session whose instance went away when the answer set none.
    private static func writeStickyCookies(into w: inout LineWriter, _ p: UnsafeRawBufferPointer, fields: [FieldSpan],
                                           facts: MessageFacts, sticky: StickyInstruction) {
        var wrote = false
        if facts.setCookiePresent {
            for field in fields where field.kind == .setCookie {
                let prefix: StaticString = "JSESSIONID="
                let n = prefix.utf8CodeUnitCount
                guard field.valueEnd - field.valueStart >= n else { continue }
                var matches = true
                for i in 0..<n where p[field.valueStart + i] != prefix.utf8Start[i] { matches = false; break }
                guard matches else { continue }
                var attributes = field.valueStart + n
                while attributes < field.valueEnd, p[attributes] != UInt8(ascii: ";") { attributes += 1 }
                w.put("Set-Cookie: __VCAP_ID__=")
                w.put(sticky.instanceGUID)
                w.put(UnsafeRawBufferPointer(rebasing: p[attributes..<field.valueEnd]))
                w.put("\r\n")
                wrote = true
            }
        }
        if !wrote && sticky.repin {
            w.put("Set-Cookie: __VCAP_ID__=")
            w.put(sticky.instanceGUID)
            w.put(sticky.secure ? "; Path=/; HttpOnly; Secure\r\n" : "; Path=/; HttpOnly\r\n")
        }
    }

    /// A router-made answer (CONTRACTS.md): status, `X-Cf-RouterError`, plain-text detail.
    static func writeAnswer(into out: inout ByteBuffer, _ answer: RouterAnswer, close: Bool, headRequest: Bool) {
        out.writeStaticString("HTTP/1.1 ")
        AccessLogBuffer.decimal(Int64(answer.status), into: &out)
        out.writeInteger(HTTPSyntax.sp)
        out.writeStaticString(answer.reason)
        out.writeStaticString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Cf-RouterError: ")
        out.writeString(answer.code.rawValue)
        out.writeStaticString("\r\nContent-Length: ")
        let body = "\(answer.status) \(answer.reason): \(answer.detail)\n"
        AccessLogBuffer.decimal(Int64(body.utf8.count), into: &out)
        out.writeStaticString(close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n")
        if !headRequest { out.writeString(body) }
    }
}

/// The cookie facts sticky sessions need from a request's `Cookie` fields.
struct SessionCookies: Sendable, Equatable {
    /// The `__VCAP_ID__` value.
    var instance: Range<Int>?
    var jsessionID = false

    static func read(_ p: UnsafeRawBufferPointer, fields: [FieldSpan]) -> SessionCookies {
        var result = SessionCookies()
        for field in fields where field.kind == .cookie {
            var i = field.valueStart
            while i < field.valueEnd {
                while i < field.valueEnd, p[i] == HTTPSyntax.sp || p[i] == UInt8(ascii: ";") { i += 1 }
                let nameStart = i
                while i < field.valueEnd, p[i] != UInt8(ascii: "="), p[i] != UInt8(ascii: ";") { i += 1 }
                let nameEnd = i
                var valueStart = i
                if i < field.valueEnd, p[i] == UInt8(ascii: "=") { i += 1; valueStart = i }
                while i < field.valueEnd, p[i] != UInt8(ascii: ";") { i += 1 }
                var valueEnd = i
                while valueEnd > valueStart, HTTPSyntax.isWhitespace(p[valueEnd - 1]) { valueEnd -= 1 }
                if Self.named(p, nameStart, nameEnd, "__VCAP_ID__"), valueEnd > valueStart {
                    result.instance = valueStart..<valueEnd
                } else if Self.named(p, nameStart, nameEnd, "JSESSIONID") {
                    result.jsessionID = true
                }
            }
        }
        return result
    }

    private static func named(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: StaticString) -> Bool {
        guard end - start == name.utf8CodeUnitCount else { return false }
        for i in 0..<(end - start) where p[start + i] != name.utf8Start[i] { return false }
        return true
    }
}
