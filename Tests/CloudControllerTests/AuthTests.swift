import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CloudController

extension ControllerIntegration {
    @Suite struct TokenFlows {
        func rawToken(_ p: Platform, _ form: String, client: String = "cf:") async throws -> Reply {
            let r = try await p.client.execute(
                uri: "/oauth/token", method: .post,
                headers: [.authorization: "Basic " + Data(client.utf8).base64EncodedString(),
                          .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: form))
            return Reply(status: r.status, headers: r.headers, body: String(buffer: r.body))
        }

        @Test func passwordGrantReturnsCFShapedTokens() async throws {
            try await Platform.run { p in
                let r = try await rawToken(p, "grant_type=password&username=admin&password=\(Platform.adminPassword)")
                #expect(r.status == .ok)
                let json = r.json
                for key in ["access_token", "refresh_token", "token_type", "expires_in", "scope", "jti"] {
                    #expect(json[key] != nil, "missing \(key)")
                }
                #expect(json["token_type"] as? String == "bearer")
                #expect((json["scope"] as? String)?.contains("cloud_controller.admin") == true)
                // The access token is a JWT whose claims the cf CLI reads.
                let parts = (json["access_token"] as? String ?? "").split(separator: ".")
                #expect(parts.count == 3)
                let claims = try JSONSerialization.jsonObject(with: JWTSigner.fromBase64URL(parts[1]) ?? Data()) as? [String: Any] ?? [:]
                for key in ["sub", "user_id", "user_name", "scope", "client_id", "iat", "exp", "iss", "jti"] {
                    #expect(claims[key] != nil, "claim \(key) missing")
                }
                #expect(claims["user_name"] as? String == "admin")
                // The token works.
                #expect(try await p.get("/v3/organizations", json["access_token"] as! String).status == .ok)
            }
        }

        @Test func badCredentialsAndBadClient() async throws {
            try await Platform.run { p in
                let wrong = try await rawToken(p, "grant_type=password&username=admin&password=nope")
                #expect(wrong.status == .unauthorized)
                #expect(wrong.json["error"] as? String == "unauthorized")
                #expect(wrong.json["error_description"] as? String == "Bad credentials")
                let unknown = try await rawToken(p, "grant_type=password&username=ghost&password=nope")
                #expect(unknown.status == .unauthorized)
                let client = try await rawToken(p, "grant_type=password&username=admin&password=\(Platform.adminPassword)", client: "other:secret")
                #expect(client.status == .unauthorized)
                let grant = try await rawToken(p, "grant_type=client_credentials")
                #expect(grant.status == .badRequest)
                #expect(grant.json["error"] as? String == "unsupported_grant_type")
            }
        }

        @Test func refreshRotatesAndRevokes() async throws {
            try await Platform.run { p in
                let first = try await rawToken(p, "grant_type=password&username=admin&password=\(Platform.adminPassword)").json
                let refresh = first["refresh_token"] as! String
                let second = try await rawToken(p, "grant_type=refresh_token&refresh_token=\(refresh)")
                #expect(second.status == .ok)
                #expect(second.json["refresh_token"] as? String != nil)
                #expect(second.json["refresh_token"] as? String != refresh)
                #expect(try await p.get("/v3/organizations", second.json["access_token"] as! String).status == .ok)
                // The used refresh token is spent.
                let reuse = try await rawToken(p, "grant_type=refresh_token&refresh_token=\(refresh)")
                #expect(reuse.status == .unauthorized)
                // Stored only as a hash.
                let stored = try await p.pool.query("SELECT count(*) AS n FROM refresh_tokens WHERE token_hash = $1 OR jti = $1", [refresh])
                #expect(try stored.rows[0].decode("n", as: Int.self) == 0)
            }
        }

        @Test func revokingOneRefreshTokenLeavesOthers() async throws {
            try await Platform.run { p in
                let a = try await rawToken(p, "grant_type=password&username=admin&password=\(Platform.adminPassword)").json
                let b = try await rawToken(p, "grant_type=password&username=admin&password=\(Platform.adminPassword)").json
                let refreshA = a["refresh_token"] as! String
                let refreshB = b["refresh_token"] as! String
                let jtiA = String(refreshA.split(separator: ".")[0])
                let revoked = try await p.delete("/oauth/token/revoke/\(jtiA)", p.adminToken)
                #expect(revoked.status == .ok)
                #expect(try await rawToken(p, "grant_type=refresh_token&refresh_token=\(refreshA)").status == .unauthorized)
                #expect(try await rawToken(p, "grant_type=refresh_token&refresh_token=\(refreshB)").status == .ok)
            }
        }

        @Test func invalidTokensAre401Code1000() async throws {
            try await Platform.run { p in
                let signer = JWTSigner(secret: p.config.tokenSigningKey)
                let issuer = p.config.externalURL + "/oauth/token"
                let parts = p.adminToken.split(separator: ".")
                let claims = try JSONDecoder().decode(JWTSigner.Claims.self, from: JWTSigner.fromBase64URL(parts[1])!)
                var expired = claims
                expired.iat -= 7200
                expired.exp = Int(Date().timeIntervalSince1970) - 10
                let expiredToken = try signer.sign(expired)
                let otherKey = try JWTSigner(secret: "another-signing-key-0123456789abcdefghijkl").sign(claims)
                let noneHeader = JWTSigner.base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
                let algNone = "\(noneHeader).\(parts[1])."
                let tampered = "\(parts[0]).\(JWTSigner.base64URL(Data(#"{"sub":"x"}"#.utf8))).\(parts[2])"
                var wrongIssuer = claims
                wrongIssuer.iss = "http://evil/oauth/token"
                for (name, token) in [("expired", expiredToken), ("other key", otherKey), ("alg none", algNone),
                                      ("tampered", tampered), ("garbage", "abc"), ("wrong issuer", try signer.sign(wrongIssuer))] {
                    let r = try await p.get("/v3/apps", token)
                    #expect(r.status == .unauthorized, "\(name)")
                    #expect(r.errorCode == 1000, "\(name)")
                    #expect(r.errorTitle == "CF-InvalidAuthToken", "\(name)")
                }
                _ = issuer
                // Missing token: 10002.
                let missing = try await p.call(.get, "/v3/apps", token: nil)
                #expect(missing.status == .unauthorized)
                #expect(missing.errorCode == 10002)
                // A token in the query string is not a credential.
                let query = try await p.call(.get, "/v3/apps?access_token=\(p.adminToken)", token: nil)
                #expect(query.status == .unauthorized)
            }
        }

        @Test func deletedUsersTokenIsRefused() async throws {
            try await Platform.run { p in
                let (guid, token) = try await p.user("leaver")
                #expect(try await p.get("/v3/apps", token).status == .ok)
                #expect(try await p.delete("/v3/users/\(guid)", p.adminToken).status == .accepted)
                let r = try await p.get("/v3/apps", token)
                #expect(r.status == .unauthorized)
                #expect(r.errorCode == 1000)
            }
        }

        @Test func passwordChangeRevokesOldTokens() async throws {
            try await Platform.run { p in
                let (guid, _) = try await p.user("changer")
                let login = try await rawToken(p, "grant_type=password&username=changer&password=password-changer").json
                let refresh = login["refresh_token"] as! String
                let access = login["access_token"] as! String
                try await Task.sleep(for: .milliseconds(1100))  // tokens_valid_after has second precision
                let changed = try await p.patch("/v3/users/\(guid)", access,
                                                #"{"password":"new-password-1","old_password":"password-changer"}"#)
                #expect(changed.status == .ok)
                #expect(try await rawToken(p, "grant_type=refresh_token&refresh_token=\(refresh)").status == .unauthorized)
                #expect(try await p.get("/v3/apps", access).status == .unauthorized)
                #expect(try await rawToken(p, "grant_type=password&username=changer&password=new-password-1").status == .ok)
                // The hash is salted PBKDF2, never the password.
                let stored = try await p.pool.query("SELECT password_hash FROM users WHERE guid = $1", [guid])
                let hash = try stored.rows[0].decode("password_hash", as: String.self)
                #expect(hash.hasPrefix("pbkdf2-sha256$"))
                #expect(!hash.contains("new-password-1"))
            }
        }

        @Test func ownPasswordChangeNeedsTheOldPassword() async throws {
            try await Platform.run { p in
                let (guid, token) = try await p.user("selfie")
                let before = try await p.pool.query("SELECT password_hash FROM users WHERE guid = $1", [guid])
                    .rows[0].decode("password_hash", as: String.self)
                let cases: [(String, String)] = [
                    (#"{"password":"new-password-1"}"#, "Changing your own password needs old_password, your current password"),
                    (#"{"password":"new-password-1","old_password":"wrong-password"}"#, "Old password is incorrect"),
                    (#"{"password":"password-selfie","old_password":"password-selfie"}"#,
                     "Your new password cannot be the same as the old password"),
                    (#"{"password":"short","old_password":"password-selfie"}"#, "Password must be at least 8 characters"),
                    (#"{"old_password":"password-selfie"}"#, "old_password is only accepted with password"),
                ]
                for (body, message) in cases {
                    let r = try await p.patch("/v3/users/\(guid)", token, body)
                    #expect(r.status == .unprocessableContent, "\(body): \(r.status) \(r.body)")
                    #expect(r.errorDetail == message, "\(body): \(r.body)")
                }
                let r = try await p.patch("/v3/users/\(guid)", token, #"{"password":"new-password-1","old_pasword":"password-selfie"}"#)
                #expect(r.status == .unprocessableContent && r.errorDetail.contains("old_pasword"), "\(r.body)")
                // Nothing changed: the hash is the same, the old password and the token still work.
                let after = try await p.pool.query("SELECT password_hash FROM users WHERE guid = $1", [guid])
                    .rows[0].decode("password_hash", as: String.self)
                #expect(after == before)
                #expect(try await p.get("/v3/apps", token).status == .ok)
                #expect(try await rawToken(p, "grant_type=password&username=selfie&password=password-selfie").status == .ok)
                #expect(try await p.get("/v3/audit_events?types=audit.user.update&target_guids=\(guid)", p.adminToken).resources.isEmpty)
            }
        }

        @Test func adminSetsAnotherUsersPassword() async throws {
            try await Platform.run { p in
                let (guid, token) = try await p.user("forgetful")
                try await Task.sleep(for: .milliseconds(1100))  // tokens_valid_after has second precision
                let r = try await p.patch("/v3/users/\(guid)", p.adminToken, #"{"password":"reset-password-1"}"#)
                #expect(r.status == .ok, "\(r.body)")
                #expect(try await p.get("/v3/apps", token).status == .unauthorized)
                #expect(try await rawToken(p, "grant_type=password&username=forgetful&password=password-forgetful").status == .unauthorized)
                #expect(try await rawToken(p, "grant_type=password&username=forgetful&password=reset-password-1").status == .ok)
                let events = try await p.get("/v3/audit_events?types=audit.user.update&target_guids=\(guid)", p.adminToken)
                #expect(events.resources.count == 1)
                #expect(!events.body.contains("reset-password-1"))
                // An old password an admin sends is checked too.
                let wrong = try await p.patch("/v3/users/\(guid)", p.adminToken, #"{"password":"reset-password-2","old_password":"nope-nope"}"#)
                #expect(wrong.status == .unprocessableContent && wrong.errorDetail == "Old password is incorrect")
            }
        }

        @Test func nonAdminCannotSetAnotherUsersPassword() async throws {
            try await Platform.run { p in
                let a = try await p.tenant("neighbour")
                let (visible, _) = try await p.user("colleague")
                try await p.role("organization_user", user: visible, org: a.org)
                let (hidden, _) = try await p.user("stranger")
                let seen = try await p.patch("/v3/users/\(visible)", a.token, #"{"password":"taken-over-1","old_password":"password-colleague"}"#)
                #expect(seen.status == .forbidden, "\(seen.body)")
                #expect(seen.errorCode == 10003)
                let unseen = try await p.patch("/v3/users/\(hidden)", a.token, #"{"password":"taken-over-1","old_password":"password-stranger"}"#)
                #expect(unseen.status == .notFound, "\(unseen.body)")
                #expect(try await rawToken(p, "grant_type=password&username=colleague&password=password-colleague").status == .ok)
                #expect(try await rawToken(p, "grant_type=password&username=stranger&password=password-stranger").status == .ok)
            }
        }
    }
}
