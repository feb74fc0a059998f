import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PlatformModels

/// A typed client of the Cloud Controller's public API (the same calls any CF client makes).
public final class PlatformClient: Sendable {
    /// Base URL of the API, without a trailing slash.
    public let api: String
    private let http: HTTPClient
    /// The underlying HTTP client (for streaming calls in extensions).
    var httpClient: HTTPClient { http }
    private let timeout: TimeAmount

    public init(api: String, timeoutSeconds: Int64 = 30) {
        var base = api
        while base.hasSuffix("/") { base.removeLast() }
        self.api = base
        self.http = HTTPClient(eventLoopGroupProvider: .singleton)
        self.timeout = .seconds(timeoutSeconds)
    }

    deinit {
        try? http.syncShutdown()
    }

    /// A raw answer: status, headers and body.
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Data

        /// The body as text.
        public var text: String { String(decoding: body, as: UTF8.self) }

        /// Decodes the body.
        public func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONDecoder().decode(T.self, from: body)
        }

        /// The first error of a CF error envelope, if the body is one.
        public var apiError: APIErrorDetail? {
            (try? JSONDecoder().decode(APIErrorEnvelope.self, from: body))?.errors.first
        }

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// An API failure, with the API's own words.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var status: Int
        public var code: Int?
        public var title: String?
        public var detail: String
        public var description: String {
            if let title { return "\(detail) (\(title), HTTP \(status))" }
            return "\(detail) (HTTP \(status))"
        }
    }

    /// Sends a request; `path` may be absolute (a pagination link) or start with '/'.
    public func send(_ method: String, _ path: String, token: String?, body: Data? = nil,
                     contentType: String = "application/json", basicAuth: String? = nil) async throws -> Answer {
        let url = path.hasPrefix("http://") || path.hasPrefix("https://") ? path : api + path
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "cf-like/\(PlatformVersion.current)")
        if let token { request.headers.add(name: "Authorization", value: "bearer \(token)") }
        if let basicAuth { request.headers.add(name: "Authorization", value: "Basic " + Data(basicAuth.utf8).base64EncodedString()) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response = try await http.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                      body: Data(buffer.readableBytesView))
    }

    /// Sends and decodes, turning non-2xx answers into `Failure`.
    public func call<T: Decodable>(_ method: String, _ path: String, token: String?, json: (any Encodable)? = nil,
                                   as type: T.Type) async throws -> T {
        let answer = try await send(method, path, token: token, body: try json.map { try JSONEncoder().encode($0) })
        try Self.check(answer)
        return try answer.decode(T.self)
    }

    /// Throws `Failure` unless the answer is 2xx.
    public static func check(_ answer: Answer) throws {
        guard (200..<300).contains(answer.status) else {
            if let e = answer.apiError {
                throw Failure(status: answer.status, code: e.code, title: e.title, detail: e.detail)
            }
            if let oauth = try? answer.decode(OAuthErrorResponse.self) {
                throw Failure(status: answer.status, code: nil, title: oauth.error, detail: oauth.errorDescription)
            }
            throw Failure(status: answer.status, code: nil, title: nil, detail: answer.text.isEmpty ? "request failed" : String(answer.text.prefix(500)))
        }
    }

    /// Every resource of a list, following `next` links.
    public func all<R: Codable & Sendable>(_ path: String, token: String?, as type: R.Type) async throws -> [R] {
        var result: [R] = []
        var next: String? = path
        while let page = next {
            let list = try await call("GET", page, token: token, as: ListResponse<R>.self)
            result += list.resources
            next = list.pagination.next?.href
        }
        return result
    }

    // MARK: Tokens

    /// Password grant against `/oauth/token` (client `cf`, empty secret).
    public func login(username: String, password: String) async throws -> TokenResponse {
        try await tokenRequest("grant_type=password&username=\(Self.form(username))&password=\(Self.form(password))")
    }

    /// Refresh grant.
    public func refresh(_ refreshToken: String) async throws -> TokenResponse {
        try await tokenRequest("grant_type=refresh_token&refresh_token=\(Self.form(refreshToken))")
    }

    private func tokenRequest(_ form: String) async throws -> TokenResponse {
        let answer = try await send("POST", "/oauth/token", token: nil, body: Data(form.utf8),
                                    contentType: "application/x-www-form-urlencoded", basicAuth: "cf:")
        try Self.check(answer)
        return try answer.decode(TokenResponse.self)
    }

    static func form(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// Percent-encodes a query value.
    public static func query(_ s: String) -> String { form(s) }
}
