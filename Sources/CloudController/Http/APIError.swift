import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PlatformModels

/// An error the API answers with, rendered as the CF error envelope.
///
/// One place maps the platform's errors to CF codes; anything else becomes a bare 500 whose
/// detail names only the request id (the cause is logged, never sent).
public struct APIError: Error, HTTPResponseError, CustomStringConvertible, Sendable {
    public var status: HTTPResponse.Status
    public var code: Int
    public var title: String
    public var detail: String
    /// Extra headers (e.g. WWW-Authenticate).
    public var headers: HTTPFields = [:]

    public var description: String { "\(status.code) \(title): \(detail)" }

    public init(status: HTTPResponse.Status, code: Int, title: String, detail: String) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        let body = try JSONResponse.encoder.encode(APIErrorEnvelope(errors: [APIErrorDetail(code: code, title: title, detail: detail)]))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    // MARK: The codes of CONTRACTS.md

    static let notAuthenticated = APIError(
        status: .unauthorized, code: 10002, title: "CF-NotAuthenticated", detail: "Authentication error")
    static func invalidAuthToken(_ why: String = "Invalid Auth Token") -> APIError {
        APIError(status: .unauthorized, code: 1000, title: "CF-InvalidAuthToken", detail: why)
    }
    static func notAuthorized(_ detail: String = "You are not authorized to perform the requested action") -> APIError {
        APIError(status: .forbidden, code: 10003, title: "CF-NotAuthorized", detail: detail)
    }
    static func notFound(_ resource: String) -> APIError {
        APIError(status: .notFound, code: 10010, title: "CF-ResourceNotFound", detail: "\(resource) not found")
    }
    static func badQuery(_ detail: String) -> APIError {
        APIError(status: .badRequest, code: 10005, title: "CF-BadQueryParameter", detail: "The query parameter is invalid: \(detail)")
    }
    static func unprocessable(_ detail: String) -> APIError {
        APIError(status: .unprocessableContent, code: 10008, title: "CF-UnprocessableEntity", detail: detail)
    }
    static func messageParse(_ detail: String) -> APIError {
        APIError(status: .badRequest, code: 1001, title: "CF-MessageParseError", detail: "Request invalid due to parse error: \(detail)")
    }
    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, code: 10011, title: "CF-RequestTooLarge",
                 detail: "The request body is larger than the limit of \(limit) bytes")
    }
    static let serviceUnavailable = APIError(
        status: .serviceUnavailable, code: 10015, title: "CF-ServiceUnavailable",
        detail: "The platform database is unavailable; try again shortly")
    static func unknown(requestID: String) -> APIError {
        APIError(status: .internalServerError, code: 10001, title: "UnknownError",
                 detail: "An unknown error occurred (request id \(requestID))")
    }
    static let methodNotAllowed = APIError(
        status: .methodNotAllowed, code: 10000, title: "CF-NotFound", detail: "Unknown request")
    static let unknownRequest = APIError(status: .notFound, code: 10000, title: "CF-NotFound", detail: "Unknown request")
}
