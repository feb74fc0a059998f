/// The router's own error: what failed, in words an operator can act on.
public struct RouterError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let cause: (any Error & Sendable)?

    public init(_ message: String, cause: (any Error & Sendable)? = nil) {
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (cause: \(cause))" }
        return message
    }
}

/// An answer the router makes itself (CONTRACTS.md, Router): a status, the
/// `X-Cf-RouterError` code every such answer carries, and a short plain-text body.
struct RouterAnswer: Sendable, Equatable {
    /// The `X-Cf-RouterError` values.
    enum Code: String, Sendable, CaseIterable {
        case unknownRoute = "unknown_route"
        case noEndpoints = "no_endpoints"
        case endpointFailure = "endpoint_failure"
        case invalidAppInstanceHeader = "invalid_cf_app_instance_header"
        case emptyHost = "empty_host"
        case invalidHost = "invalid_host"
        case badRequest = "bad_request"
        case headersTooLarge = "request_header_fields_too_large"
        case headerReadTimeout = "header_read_timeout"
        case routeTableUnavailable = "route_table_unavailable"
        case clientClosed = "client_closed_request"

        /// The code as bytes for the access log.
        var text: StaticString {
            switch self {
            case .unknownRoute: return "unknown_route"
            case .noEndpoints: return "no_endpoints"
            case .endpointFailure: return "endpoint_failure"
            case .invalidAppInstanceHeader: return "invalid_cf_app_instance_header"
            case .emptyHost: return "empty_host"
            case .invalidHost: return "invalid_host"
            case .badRequest: return "bad_request"
            case .headersTooLarge: return "request_header_fields_too_large"
            case .headerReadTimeout: return "header_read_timeout"
            case .routeTableUnavailable: return "route_table_unavailable"
            case .clientClosed: return "client_closed_request"
            }
        }
    }

    var status: Int
    var code: Code
    /// Why, for the body (never an echo of the request).
    var detail: String

    static func badRequest(_ detail: String) -> RouterAnswer { RouterAnswer(status: 400, code: .badRequest, detail: detail) }
    static let unknownRoute = RouterAnswer(status: 404, code: .unknownRoute, detail: "Requested route does not exist.")
    static let unknownInstance = RouterAnswer(status: 400, code: .unknownRoute, detail: "Requested instance does not exist for this route.")
    static let noEndpoints = RouterAnswer(status: 503, code: .noEndpoints, detail: "Requested route has no available endpoints.")
    static let endpointFailure = RouterAnswer(status: 502, code: .endpointFailure, detail: "Registered endpoint failed to handle the request.")
    static let invalidAppInstanceHeader = RouterAnswer(status: 400, code: .invalidAppInstanceHeader,
                                                       detail: "Invalid X-Cf-App-Instance header (expected APP_GUID:INDEX).")
    static let emptyHost = RouterAnswer(status: 400, code: .emptyHost, detail: "Empty Host header.")
    static let headersTooLarge = RouterAnswer(status: 431, code: .headersTooLarge, detail: "Request header fields too large.")
    static let headerReadTimeout = RouterAnswer(status: 408, code: .headerReadTimeout, detail: "Request head not received in time.")
    static let routeTableUnavailable = RouterAnswer(status: 503, code: .routeTableUnavailable,
                                                    detail: "The router has not received its route table yet.")

    static func invalidHost(_ error: HostError) -> RouterAnswer {
        error == .empty ? .emptyHost : RouterAnswer(status: 400, code: .invalidHost, detail: "\(error.description.prefix(1).uppercased())\(error.description.dropFirst()).")
    }

    var reason: StaticString {
        switch status {
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 408: return "Request Timeout"
        case 431: return "Request Header Fields Too Large"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        default: return "Error"
        }
    }
}
