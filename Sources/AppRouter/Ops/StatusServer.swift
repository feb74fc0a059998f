import NIOCore
import NIOHTTP1

/// `/health` for load balancers and `/metrics` for Prometheus, on the router's status port
/// (never on the public listener, where every host name belongs to an app).
final class StatusHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let runtime: RouterRuntime
    private var head: HTTPRequestHead?

    init(runtime: RouterRuntime) {
        self.runtime = runtime
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            answer(context, head)
        }
    }

    private func answer(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            send(context, head, .methodNotAllowed, "only GET and HEAD\n")
            return
        }
        switch path {
        case "/health":
            let health = runtime.health()
            send(context, head, health.ok ? .ok : .serviceUnavailable, health.text + "\n")
        case "/metrics":
            let keepAlive = head.isKeepAlive
            runtime.metricsText(on: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let text):
                    self.send(context, head, .ok, text, contentType: "text/plain; version=0.0.4; charset=utf-8", keepAlive: keepAlive)
                case .failure(let error):
                    self.send(context, head, .internalServerError, "metrics unavailable: \(error)\n", keepAlive: keepAlive)
                }
            }
        default:
            send(context, head, .notFound, "not found (try /health or /metrics)\n")
        }
    }

    private func send(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ body: String,
                      contentType: String = "text/plain; charset=utf-8", keepAlive: Bool? = nil) {
        let keepAlive = keepAlive ?? request.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Cache-Control", value: "no-store")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension StatusHandler: Sendable {}

/// The Prometheus text exposition of the router's metrics.
enum MetricsText {
    static func render(_ m: LoopMetrics, status: RouteTableStatus, now: Int64, openConnections: Int, draining: Bool) -> String {
        var out = ""
        out.reserveCapacity(4096)
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        family("router_requests_total", "counter", "Requests answered, by status code.")
        for (code, count) in m.requestsByStatus.enumerated() where count > 0 {
            out += "router_requests_total{status=\"\(code)\"} \(count)\n"
        }
        family("router_request_duration_seconds", "histogram", "Time from the request head to the end of the answer.")
        var cumulative = 0
        for (i, bound) in LoopMetrics.durationBounds.enumerated() {
            cumulative += m.durationBuckets[i]
            out += "router_request_duration_seconds_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        cumulative += m.durationBuckets[LoopMetrics.durationBounds.count]
        out += "router_request_duration_seconds_bucket{le=\"+Inf\"} \(cumulative)\n"
        out += "router_request_duration_seconds_sum \(Double(m.durationSumNanoseconds) / 1e9)\n"
        out += "router_request_duration_seconds_count \(m.durationCount)\n"
        family("router_backend_failures_total", "counter", "Backend failures, by kind.")
        for (i, kind) in LoopMetrics.failureKinds.enumerated() {
            out += "router_backend_failures_total{kind=\"\(kind)\"} \(m.backendFailures[i])\n"
        }
        family("router_errors_total", "counter", "Answers made by the router, by X-Cf-RouterError.")
        for (i, code) in RouterAnswer.Code.allCases.enumerated() {
            out += "router_errors_total{error=\"\(code.rawValue)\"} \(m.routerErrors[i])\n"
        }
        family("router_backends_benched_total", "counter", "Times an instance was benched after a connect failure.")
        out += "router_backends_benched_total \(m.benched)\n"
        family("router_upgrades_total", "counter", "Connections switched to another protocol (WebSocket).")
        out += "router_upgrades_total \(m.upgrades)\n"
        family("router_client_connections", "gauge", "Open client connections.")
        out += "router_client_connections \(openConnections)\n"
        family("router_client_connections_rejected_total", "counter", "Client connections closed at once because of the connection cap.")
        out += "router_client_connections_rejected_total \(m.rejectedConnections)\n"
        family("router_route_table_version", "gauge", "Version of the route table in use (-1: none yet).")
        out += "router_route_table_version \(status.version)\n"
        family("router_route_table_age_seconds", "gauge", "Seconds since the cloud controller last answered a poll (-1: never).")
        let age = status.lastContact > 0 ? Double(now - status.lastContact) / 1e9 : -1
        out += "router_route_table_age_seconds \(age)\n"
        family("router_route_table_stale", "gauge", "1 while the cloud controller is unreachable and the last table is used.")
        out += "router_route_table_stale \(status.stale ? 1 : 0)\n"
        family("router_route_table_routes", "gauge", "Routes in the table.")
        out += "router_route_table_routes \(status.routes)\n"
        family("router_route_table_backends", "gauge", "Routable instances in the table.")
        out += "router_route_table_backends \(status.backends)\n"
        family("router_route_table_updates_total", "counter", "New table versions received.")
        out += "router_route_table_updates_total \(status.updates)\n"
        family("router_route_table_fetch_failures_total", "counter", "Polls of the cloud controller that failed.")
        out += "router_route_table_fetch_failures_total \(status.failures)\n"
        family("router_draining", "gauge", "1 during graceful shutdown.")
        out += "router_draining \(draining ? 1 : 0)\n"
        return out
    }
}
