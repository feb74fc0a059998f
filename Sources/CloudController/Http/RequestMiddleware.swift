import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresStore
import Prometheus

/// First in the pipeline: assigns the request id, renders every error as the CF envelope
/// (unmapped ones as a bare 500 naming only the request id), writes one access-log line and
/// records metrics.
struct RequestMiddleware: RouterMiddleware {
    typealias Context = ControllerContext
    let metrics: PrometheusCollectorRegistry
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = Self.requestID(from: request.headers)
        context.requestID = requestID
        context.logger[metadataKey: "request.id"] = .string(requestID)
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = Self.render(error, request: request, context: context)
        }
        response.headers[HTTPField.Name("X-Vcap-Request-Id")!] = requestID  // literal name: valid by construction
        let elapsed = ContinuousClock.now - start
        let nanos = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        let route = context.endpointPath ?? "unmatched"
        metrics.makeCounter(descriptor: Self.requestsTotal,
                            labels: [("method", request.method.rawValue), ("route", route), ("status", String(response.status.code))])
            .increment()
        metrics.makeDurationHistogram(descriptor: Self.requestDuration, labels: [("route", route)],
                                      buckets: Self.buckets).recordNanoseconds(nanos)
        logger.info("request", metadata: [
            "request.id": .string(requestID),
            "http.method": .string(request.method.rawValue),
            "http.path": .string(request.uri.path),
            "http.query": .string(Self.redactedQuery(request.uri.query)),
            "http.status": .stringConvertible(response.status.code),
            "http.duration_ms": .string(String(format: "%.2f", Double(nanos) / 1e6)),
            "user.guid": .string(context.actor?.userGuid ?? "-"),
            "http.user_agent": .string(request.headers[.userAgent].map { String($0.prefix(200)) } ?? "-"),
        ])
        return response
    }

    static var requestsTotal: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "cflike", subsystem: "http", metricName: "requests", unitName: "total",
                             helpText: "API requests answered, by method, route and status")
    }
    static var requestDuration: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "cflike", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                             helpText: "Time to answer an API request, by route")
    }
    static let buckets: [Duration] = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                      .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                                      .seconds(2.5), .seconds(5)]

    static func requestID(from headers: HTTPFields) -> String {
        for name in ["X-Vcap-Request-Id", "X-Request-Id"] {
            if let value = headers[HTTPField.Name(name)!], (1...128).contains(value.count),  // literal names
               value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }) {
                return value
            }
        }
        return UUID().uuidString.lowercased()
    }

    /// Values of parameters that could carry credentials never reach the log.
    static func redactedQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "-" }
        return query.split(separator: "&").map { pair -> String in
            let name = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            let lower = name.lowercased()
            if ["token", "password", "secret", "auth", "key", "code"].contains(where: lower.contains) { return "\(name)=[redacted]" }
            return String(pair)
        }.joined(separator: "&")
    }

    static func render(_ error: any Error, request: Request, context: Context) -> Response {
        let apiError: APIError
        switch error {
        case let e as APIError:
            apiError = e
        case let e as HTTPError where e.status == .notFound:
            apiError = .unknownRequest
        case let e as HTTPError where e.status == .methodNotAllowed:
            apiError = .methodNotAllowed
        case let e as HTTPError where e.status == .contentTooLarge:
            apiError = .bodyTooLarge(limit: context.maxUploadSize)
        case let e as PostgresError where [.connection, .poolClosed, .timeout].contains(e.kind):
            apiError = .serviceUnavailable
        default:
            context.logger.error("unhandled error", metadata: ["error": .string(String(describing: error))])
            apiError = .unknown(requestID: context.requestID)
        }
        if apiError.status == .serviceUnavailable {
            context.logger.warning("database unavailable", metadata: ["error": .string(String(describing: error))])
        }
        return (try? apiError.response(from: request, context: context)) ?? Response(status: .internalServerError)
    }
}

/// Resolves the bearer token of every `/v3` request to an actor (401 otherwise).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = ControllerContext
    let tokens: TokenService
    let db: Database

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.actor = try await Self.authenticate(request, tokens: tokens, db: db)
        context.logger[metadataKey: "user.guid"] = .string(context.actor?.userGuid ?? "-")
        return try await next(request, context)
    }

    static func authenticate(_ request: Request, tokens: TokenService, db: Database) async throws -> Actor {
        guard let header = request.headers[.authorization], !header.isEmpty else { throw APIError.notAuthenticated }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw APIError.invalidAuthToken() }
        return try await tokens.authenticate(db: db, token: String(parts[1]).trimmingCharacters(in: .whitespaces))
    }
}

/// Guards `/internal/`: only a component credential from configuration opens it; user tokens never do.
struct InternalAuthMiddleware: RouterMiddleware {
    typealias Context = ControllerContext
    let credential: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { throw APIError.notAuthenticated }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "component",
              constantTimeEquals(Array(parts[1].utf8), credential)
        else { throw APIError.invalidAuthToken("Invalid component credential") }
        var context = context
        context.component = request.headers[HTTPField.Name("X-Cf-Like-Component")!].map { String($0.prefix(64)) } ?? "unknown"  // literal name
        return try await next(request, context)
    }
}
