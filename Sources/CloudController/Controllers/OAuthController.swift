import Foundation
import Hummingbird
import NIOCore
import PlatformModels

/// `POST /oauth/token` (password and refresh_token grants, client `cf` with an empty secret)
/// and `DELETE /oauth/token/revoke/:token_id` (revokes one refresh token).
struct OAuthController {
    let services: Services

    func register(_ router: Router<ControllerContext>) {
        router.post("/oauth/token", use: token)
        router.delete("/oauth/token/revoke/:token_id", use: revoke)
    }

    static func oauthError(_ status: HTTPResponse.Status, _ error: String, _ description: String) throws -> Response {
        var r = try JSONResponse.make(OAuthErrorResponse(error: error, errorDescription: description), status: status)
        if status == .unauthorized { r.headers[.wwwAuthenticate] = "Basic realm=\"UAA/client\", error=\"\(error)\"" }
        return r
    }

    @Sendable func token(_ request: Request, context: ControllerContext) async throws -> Response {
        guard Self.clientIsCF(request.headers[.authorization]) else {
            return try Self.oauthError(.unauthorized, "unauthorized", "Bad credentials")
        }
        let buffer = try await services.body.collect(request)
        let form = Self.parseForm(String(decoding: buffer.readableBytesView, as: UTF8.self))
        do {
            let answer: TokenResponse
            switch form["grant_type"] {
            case "password":
                guard let username = form["username"], let password = form["password"], !username.isEmpty else {
                    return try Self.oauthError(.badRequest, "invalid_request", "username and password are required")
                }
                answer = try await services.tokens.passwordGrant(db: services.db, username: username, password: password)
            case "refresh_token":
                guard let refresh = form["refresh_token"], !refresh.isEmpty else {
                    return try Self.oauthError(.badRequest, "invalid_request", "refresh_token is required")
                }
                answer = try await services.tokens.refreshGrant(db: services.db, refreshToken: refresh)
            case nil:
                return try Self.oauthError(.badRequest, "invalid_request", "grant_type is required")
            default:
                return try Self.oauthError(.badRequest, "unsupported_grant_type", "Unsupported grant type")
            }
            return try JSONResponse.make(answer, headers: [.cacheControl: "no-store"])
        } catch TokenService.GrantError.badCredentials {
            return try Self.oauthError(.unauthorized, "unauthorized", "Bad credentials")
        } catch TokenService.GrantError.invalidRefreshToken {
            return try Self.oauthError(.unauthorized, "invalid_token", "The refresh token is invalid, expired or revoked")
        }
    }

    @Sendable func revoke(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try await AuthMiddleware.authenticate(request, tokens: services.tokens, db: services.db)
        let jti = try context.parameters.require("token_id")
        let revoked = try await services.db.write { conn in
            try conn.query(
                "UPDATE refresh_tokens SET revoked_at = now() WHERE jti = $1 AND revoked_at IS NULL AND (user_guid = $2 OR $3)",
                [jti, actor.userGuid, actor.isAdmin]).affectedRows
        }
        guard revoked == 1 else { throw APIError.notFound("Token") }
        return Response(status: .ok)
    }

    /// Only client `cf` with an empty secret, as the cf CLI sends it.
    static func clientIsCF(_ header: String?) -> Bool {
        guard let header else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8)
        else { return false }
        return text == "cf:"
    }

    static func parseForm(_ body: String) -> [String: String] {
        var form: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            form[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return form
    }
}
