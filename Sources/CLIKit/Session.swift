import Foundation
import PlatformClient
import PlatformModels

typealias PlatformClientFailure = PlatformClient.Failure

/// A logged-in conversation with the API: refreshes the access token once when the API answers
/// 401 code 1000 (expired or invalid), and saves the new tokens.
public final class Session: @unchecked Sendable {
    public private(set) var config: TargetConfig
    public let client: PlatformClient

    public init(requireLogin: Bool = true) throws {
        config = try TargetConfig.load()
        guard let api = config.api else { throw CLIError.usage("no API set; run `cf-like api URL` or `cf-like login -a URL`") }
        if requireLogin, config.accessToken == nil { throw CLIError.usage("not logged in; run `cf-like login`") }
        client = PlatformClient(api: api)
    }

    /// Sends with the current token, refreshing once on 401/1000.
    public func send(_ method: String, _ path: String, body: Data? = nil) async throws -> PlatformClient.Answer {
        var answer = try await client.send(method, path, token: config.accessToken, body: body)
        if answer.status == 401, answer.apiError?.code == 1000, let refresh = config.refreshToken {
            let tokens = try await client.refresh(refresh)
            config.accessToken = tokens.accessToken
            config.refreshToken = tokens.refreshToken
            try config.save()
            answer = try await client.send(method, path, token: config.accessToken, body: body)
        }
        return answer
    }

    /// Sends JSON and decodes, throwing the API's error for non-2xx.
    public func call<T: Decodable>(_ method: String, _ path: String, json: (any Encodable)? = nil, as type: T.Type) async throws -> T {
        let answer = try await send(method, path, body: try json.map { try JSONEncoder().encode($0) })
        try PlatformClient.check(answer)
        return try answer.decode(T.self)
    }

    /// Every resource of a list, following `next`.
    public func all<R: Codable & Sendable>(_ path: String, as type: R.Type) async throws -> [R] {
        var result: [R] = []
        var next: String? = path
        while let page = next {
            let list = try await call("GET", page, as: ListResponse<R>.self)
            result += list.resources
            next = list.pagination.next?.href
        }
        return result
    }

    /// The targeted space, or a usage error saying how to target one.
    public func targetSpace() throws -> (guid: String, name: String) {
        guard let guid = config.spaceGuid, let name = config.spaceName else {
            throw CLIError.usage("no space targeted; run `cf-like target -o ORG -s SPACE`")
        }
        return (guid, name)
    }

    /// Finds one resource by name in a list endpoint, or fails naming what was looked for.
    public func find<R: Codable & Sendable>(_ path: String, name: String, kind: String, as type: R.Type) async throws -> R {
        let sep = path.contains("?") ? "&" : "?"
        let list = try await call("GET", "\(path)\(sep)names=\(PlatformClient.query(name))", as: ListResponse<R>.self)
        guard let first = list.resources.first else { throw CLIError.operation("\(kind) '\(name)' not found") }
        return first
    }

    public func save() throws { try config.save() }
    public func update(_ change: (inout TargetConfig) -> Void) { change(&config) }
}
