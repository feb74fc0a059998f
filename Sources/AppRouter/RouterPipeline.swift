import NIOCore
import NIOSSL

/// How a request flows through the router, in order — the one place to read it.
///
/// Per client connection the channel pipeline is `[TLS] -> ClientHandler`; per backend
/// connection it is `BackendHandler`. No HTTP codec handlers: heads are parsed in place from
/// the bytes read and answers pass through without being decoded and re-encoded.
///
/// For each request `ClientHandler` runs:
///  1. read the head (`HeadParser`): strict syntax, header block limit (431), header read
///     timeout (408, slowloris), field count limit (431);
///  2. check framing (`MessageFacts`): Content-Length with Transfer-Encoding, differing
///     Content-Length, Transfer-Encoding other than chunked → 400 and close;
///  3. `admit` below: target form, Host, route table loaded, route lookup (Host without port,
///     case or trailing dot; longest path prefix), instance targeting, sticky session, balancing;
///  4. rewrite the head (`HeadWriter.writeRequestHead`): hop-by-hop and Connection-listed fields
///     dropped, X-Forwarded-For appended, X-Forwarded-Proto/-Host, X-Vcap-Request-Id,
///     X-Request-Id, then the instance's X-CF-ApplicationID / X-CF-InstanceIndex / X-CF-InstanceID;
///  5. take a pooled keep-alive connection to the instance or dial one (5 s); a connect failure
///     benches the instance and retries another (`RetryPolicy`), up to 3 attempts;
///  6. stream the request body to the backend and the answer back, each side read only while
///     the other is writable; the answer's head is checked (`HeadParser`, `MessageFacts`) and
///     rewritten (`HeadWriter.writeResponseHead`: sticky cookie, Connection), its body bytes
///     pass through untouched (de-chunked only for HTTP/1.0 clients);
///  7. `101 Switching Protocols` turns both connections into a byte tunnel (WebSocket);
///  8. on completion: the backend connection goes back to the pool if reusable, one access-log
///     line and the metrics are recorded, and the next request on the connection is read.
enum RouterPipeline {
    /// Installs the client-side handlers on a freshly accepted connection.
    static func configureClientChannel(_ channel: any Channel, loop: LoopContext, tls: NIOSSLContext?) throws {
        let operations = channel.pipeline.syncOperations
        if let tls {
            try operations.addHandler(NIOSSLServerHandler(context: tls))
        }
        try operations.addHandler(ClientHandler(loop: loop, https: tls != nil))
    }

    /// The routing decision for one request.
    struct Admission {
        var target: RequestTarget
        var route: Route
        var backend: Backend
        /// `X-Cf-App-Instance` fixed the instance: no other may serve the request.
        var targeted: Bool
        /// The request's `__VCAP_ID__` named an instance that could not take it.
        var stickyMiss: Bool
    }

    enum Decision {
        case forward(Admission)
        case answer(RouterAnswer)
    }

    /// Step 3: from a well-framed head to a route and an instance, or to the router's answer.
    static func admit(_ p: UnsafeRawBufferPointer, line: RequestLine, fields: [FieldSpan], facts: MessageFacts,
                      snapshot: RouteSnapshot, balancer: Balancer, now: Int64) -> Decision {
        // Target form: origin-form, absolute-form (its authority must name the Host), or `*`.
        guard let target = RequestTarget.parse(p, line.targetStart, line.targetEnd) else {
            return .answer(.badRequest("Malformed request target."))
        }
        if target.asterisk && !HTTPSyntax.equalsLowercase(p, line.start, line.methodEnd - line.start, "options") {
            return .answer(.badRequest("Asterisk-form request target outside OPTIONS."))
        }

        // Host: one, well-formed; the routing name drops port, case and a trailing dot.
        let hostField = fields[facts.hostField]
        let host: Range<Int>
        do throws(HostError) {
            host = try HostName.routingName(p, hostField.valueStart, hostField.valueEnd)
            if let authority = target.authority {
                let named = try HostName.routingName(p, authority.lowerBound, authority.upperBound)
                guard named.count == host.count,
                      HTTPSyntax.equalsIgnoringCase(p, named.lowerBound, p, host.lowerBound, host.count)
                else { throw HostError.mismatch }
            }
        } catch {
            return .answer(.invalidHost(error))
        }

        // Route: host, then the longest path prefix.
        guard snapshot.isLoaded else { return .answer(.routeTableUnavailable) }
        guard let routes = snapshot.host(p, host),
              let route = routes.match(p, target.pathStart, target.asterisk ? target.pathStart : target.pathEnd)
        else { return .answer(.unknownRoute) }
        guard !route.backends.isEmpty else { return .answer(.noEndpoints) }

        // Instance targeting: X-Cf-App-Instance: APP_GUID:INDEX.
        if facts.appInstanceField >= 0 {
            let field = fields[facts.appInstanceField]
            guard let (guid, index) = appInstance(p, field.valueStart, field.valueEnd) else {
                return .answer(.invalidAppInstanceHeader)
            }
            guard let backend = route.backend(appGUID: p, guid, index: index) else { return .answer(.unknownInstance) }
            if balancer.maxInFlightPerBackend > 0 && backend.inFlight.load(ordering: .relaxed) >= balancer.maxInFlightPerBackend {
                return .answer(.noEndpoints)
            }
            return .forward(Admission(target: target, route: route, backend: backend, targeted: true, stickyMiss: false))
        }

        // Sticky session: __VCAP_ID__ names the instance while it is routable and not benched.
        var stickyMiss = false
        if facts.cookiePresent {
            let cookies = SessionCookies.read(p, fields: fields)
            if let instance = cookies.instance {
                if let backend = route.backend(instanceGUID: p, instance), !backend.isBenched(now: now),
                   balancer.maxInFlightPerBackend == 0
                    || backend.inFlight.load(ordering: .relaxed) < balancer.maxInFlightPerBackend {
                    return .forward(Admission(target: target, route: route, backend: backend, targeted: false, stickyMiss: false))
                }
                stickyMiss = true
            }
        }

        // Balancing over the routable instances.
        guard let backend = balancer.pick(route, now: now, excluding: TriedBackends()) else { return .answer(.noEndpoints) }
        return .forward(Admission(target: target, route: route, backend: backend, targeted: false, stickyMiss: stickyMiss))
    }

    /// `APP_GUID:INDEX` with a GUID of letters, digits and dashes and a decimal index.
    static func appInstance(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (Range<Int>, Int)? {
        var colon = -1
        for i in start..<end {
            let c = p[i]
            if c == UInt8(ascii: ":") {
                guard colon < 0 else { return nil }
                colon = i
            } else if colon < 0 {
                switch c {
                case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"): continue
                default: return nil
                }
            }
        }
        guard colon > start, end - colon - 1 <= 6, let index = HTTPSyntax.decimal(p, colon + 1, end) else { return nil }
        return (start..<colon, Int(index))
    }
}
