/// `{"href": ...}` (plus `method` for actions), as CF v3 renders links.
public struct Link: Codable, Sendable, Equatable {
    public var href: String
    public var method: String?
    public init(href: String, method: String? = nil) {
        self.href = href
        self.method = method
    }
}

/// `metadata: {labels, annotations}`.
public struct Metadata: Codable, Sendable, Equatable {
    public var labels: [String: String]
    public var annotations: [String: String]
    public init(labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.labels = labels
        self.annotations = annotations
    }
}

/// `{"data": {"guid": ...}}`; `data` is null for an empty to-one relationship.
public struct ToOneRelationship: Codable, Sendable, Equatable {
    public struct Data: Codable, Sendable, Equatable {
        public var guid: String
        public init(guid: String) { self.guid = guid }
    }
    public var data: Data?
    public init(guid: String?) { self.data = guid.map(Data.init(guid:)) }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(data, forKey: .data)  // CF renders an empty relationship as "data": null
    }
}

/// The `pagination` object of every list.
public struct Pagination: Codable, Sendable, Equatable {
    public var totalResults: Int
    public var totalPages: Int
    public var first: Link
    public var last: Link
    public var next: Link?
    public var previous: Link?

    enum CodingKeys: String, CodingKey {
        case totalResults = "total_results", totalPages = "total_pages", first, last, next, previous
    }

    public init(totalResults: Int, totalPages: Int, first: Link, last: Link, next: Link?, previous: Link?) {
        self.totalResults = totalResults
        self.totalPages = totalPages
        self.first = first
        self.last = last
        self.next = next
        self.previous = previous
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(totalResults, forKey: .totalResults)
        try c.encode(totalPages, forKey: .totalPages)
        try c.encode(first, forKey: .first)
        try c.encode(last, forKey: .last)
        try c.encode(next, forKey: .next)  // null, not absent: clients test for null
        try c.encode(previous, forKey: .previous)
    }
}

/// A page of resources.
public struct ListResponse<Resource: Codable & Sendable>: Codable, Sendable {
    public var pagination: Pagination
    public var resources: [Resource]
    public init(pagination: Pagination, resources: [Resource]) {
        self.pagination = pagination
        self.resources = resources
    }
}

/// One entry of the CF error envelope.
public struct APIErrorDetail: Codable, Sendable, Equatable {
    public var code: Int
    public var title: String
    public var detail: String
    public init(code: Int, title: String, detail: String) {
        self.code = code
        self.title = title
        self.detail = detail
    }
}

/// `{"errors": [...]}`.
public struct APIErrorEnvelope: Codable, Sendable, Equatable {
    public var errors: [APIErrorDetail]
    public init(errors: [APIErrorDetail]) { self.errors = errors }
}

/// `/oauth/token` answer.
public struct TokenResponse: Codable, Sendable {
    public var accessToken: String
    public var refreshToken: String
    public var tokenType: String
    public var expiresIn: Int
    public var scope: String
    public var jti: String

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token", refreshToken = "refresh_token", tokenType = "token_type"
        case expiresIn = "expires_in", scope, jti
    }

    public init(accessToken: String, refreshToken: String, tokenType: String, expiresIn: Int, scope: String, jti: String) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
        self.scope = scope
        self.jti = jti
    }
}

/// OAuth error answer (`{"error": ..., "error_description": ...}`).
public struct OAuthErrorResponse: Codable, Sendable {
    public var error: String
    public var errorDescription: String
    enum CodingKeys: String, CodingKey { case error, errorDescription = "error_description" }
    public init(error: String, errorDescription: String) {
        self.error = error
        self.errorDescription = errorDescription
    }
}
