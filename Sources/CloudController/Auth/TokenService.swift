import Crypto
import Foundation
import NIOPosix
import PlatformModels
import PostgresStore

/// Issues and checks tokens: JWT access tokens (short-lived, HS256) and opaque refresh tokens
/// stored only as SHA-256 hashes, revocable one by one.
struct TokenService: Sendable {
    let signer: JWTSigner
    let issuer: String
    let accessTTL: Int
    let refreshTTL: Int
    let hasher: PasswordHasher
    let threadPool: NIOThreadPool

    enum GrantError: Error { case badCredentials, invalidRefreshToken }

    static let userScopes = ["openid", "cloud_controller.read", "cloud_controller.write", "uaa.user"]
    static let adminScopes = userScopes + ["cloud_controller.admin"]

    /// Password grant: verifies with the slow KDF off the event loops; an unknown user costs the
    /// same time as a wrong password.
    func passwordGrant(db: Database, username: String, password: String) async throws -> TokenResponse {
        let user = try await db.read { conn in
            try conn.query("SELECT guid, username, admin, password_hash FROM users WHERE username = $1 AND origin = 'uaa'",
                           [username]).first.map {
                (guid: try $0.decode("guid", as: String.self), username: try $0.decode("username", as: String.self),
                 admin: try $0.decode("admin", as: Bool.self), hash: try $0.decode("password_hash", as: String.self))
            }
        }
        let hasher = self.hasher
        let stored = user?.hash ?? "pbkdf2-sha256$\(hasher.rounds)$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        let ok = try await threadPool.runIfActive { hasher.verify(password, against: stored) }
        guard ok, let user else { throw GrantError.badCredentials }
        return try await issue(db: db, userGuid: user.guid, username: user.username, admin: user.admin, grant: "password")
    }

    /// Refresh grant: the presented token is revoked and a new pair issued (rotation).
    func refreshGrant(db: Database, refreshToken: String) async throws -> TokenResponse {
        let hash = Self.hash(refreshToken)
        let user = try await db.write { conn -> (guid: String, username: String, admin: Bool)? in
            let rows = try conn.query(
                """
                UPDATE refresh_tokens SET revoked_at = now()
                WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()
                RETURNING user_guid
                """, [hash])
            guard let userGuid = try rows.first?.decode("user_guid", as: String.self) else { return nil }
            return try conn.query("SELECT guid, username, admin FROM users WHERE guid = $1", [userGuid]).first.map {
                (try $0.decode("guid", as: String.self), try $0.decode("username", as: String.self), try $0.decode("admin", as: Bool.self))
            }
        }
        guard let user else { throw GrantError.invalidRefreshToken }
        return try await issue(db: db, userGuid: user.guid, username: user.username, admin: user.admin, grant: "refresh_token")
    }

    private func issue(db: Database, userGuid: String, username: String, admin: Bool, grant: String) async throws -> TokenResponse {
        let now = Int(Date().timeIntervalSince1970)
        let scopes = admin ? Self.adminScopes : Self.userScopes
        let jti = Rows.newGuid().replacingOccurrences(of: "-", with: "")
        let claims = JWTSigner.Claims(
            jti: jti, sub: userGuid, userID: userGuid, userName: username, scope: scopes, clientID: "cf", cid: "cf",
            iat: now, exp: now + accessTTL, iss: issuer, aud: ["cloud_controller", "openid", "cf"], origin: "uaa", grantType: grant)
        let access = try signer.sign(claims)
        var random = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in random.indices { random[i] = rng.next() }
        let refreshJTI = Rows.newGuid().replacingOccurrences(of: "-", with: "") + "-r"
        let refresh = refreshJTI + "." + JWTSigner.base64URL(Data(random))
        let ttl = refreshTTL
        try await db.write { conn in
            try conn.query(
                "INSERT INTO refresh_tokens(jti, token_hash, user_guid, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
                [refreshJTI, Self.hash(refresh), userGuid, ttl])
        }
        return TokenResponse(accessToken: access, refreshToken: refresh, tokenType: "bearer", expiresIn: accessTTL,
                             scope: scopes.joined(separator: " "), jti: jti)
    }

    /// Resolves `Authorization: bearer TOKEN` to an actor; any failure is 401 code 1000.
    func authenticate(db: Database, token: String, now: Date = Date()) async throws -> Actor {
        let claims: JWTSigner.Claims
        do {
            claims = try signer.verify(token, issuer: issuer, now: now)
        } catch .expired {
            throw APIError.invalidAuthToken("Invalid Auth Token: the token has expired")
        } catch {
            throw APIError.invalidAuthToken()
        }
        guard Rows.isGuid(claims.sub) else { throw APIError.invalidAuthToken() }
        let user = try await db.read { conn in
            try conn.query(
                "SELECT username, admin, extract(epoch FROM tokens_valid_after)::bigint AS valid_after FROM users WHERE guid = $1",
                [claims.sub]).first.map {
                (try $0.decode("username", as: String.self), try $0.decode("admin", as: Bool.self),
                 try $0.decode("valid_after", as: Int.self))
            }
        }
        guard let user, claims.iat >= user.2 else { throw APIError.invalidAuthToken() }
        return Actor(userGuid: claims.sub, username: user.0, isAdmin: user.1)
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
