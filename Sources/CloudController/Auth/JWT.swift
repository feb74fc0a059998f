import Crypto
import Foundation

/// HS256 JSON Web Tokens: just what the access token needs, with nothing negotiable.
///
/// The header must say exactly `HS256`; `none` and every other algorithm are refused before the
/// signature is even looked at, and the signature is compared in constant time.
struct JWTSigner: Sendable {
    private let secret: [UInt8]

    init(secret: String) {
        self.secret = Array(secret.utf8)
    }

    private var key: SymmetricKey { SymmetricKey(data: secret) }

    struct Claims: Codable, Sendable, Equatable {
        var jti: String
        var sub: String
        var userID: String
        var userName: String
        var scope: [String]
        var clientID: String
        var cid: String
        var iat: Int
        var exp: Int
        var iss: String
        var aud: [String]
        var origin: String
        var grantType: String
        enum CodingKeys: String, CodingKey {
            case jti, sub, userID = "user_id", userName = "user_name", scope, clientID = "client_id", cid, iat, exp
            case iss, aud, origin, grantType = "grant_type"
        }
    }

    enum VerifyError: Error, Equatable { case malformed, algorithm, signature, expired, issuer }

    func sign(_ claims: Claims) throws -> String {
        let header = #"{"alg":"HS256","typ":"JWT"}"#
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let payload = try encoder.encode(claims)
        let signingInput = Self.base64URL(Data(header.utf8)) + "." + Self.base64URL(payload)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: key)
        return signingInput + "." + Self.base64URL(Data(mac))
    }

    func verify(_ token: String, issuer: String, now: Date) throws(VerifyError) -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Self.fromBase64URL(parts[0]),
              let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any]
        else { throw .malformed }
        guard header["alg"] as? String == "HS256" else { throw .algorithm }
        guard let signature = Self.fromBase64URL(parts[2]) else { throw .malformed }
        let signingInput = Data((parts[0] + "." + parts[1]).utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: key) else {
            throw .signature
        }
        guard let payload = Self.fromBase64URL(parts[1]),
              let claims = try? JSONDecoder().decode(Claims.self, from: payload)
        else { throw .malformed }
        guard claims.iss == issuer else { throw .issuer }
        guard Double(claims.exp) > now.timeIntervalSince1970 else { throw .expired }
        return claims
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func fromBase64URL(_ s: Substring) -> Data? {
        var text = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/") }) else { return nil }
        while text.count % 4 != 0 { text.append("=") }
        return Data(base64Encoded: text)
    }
}
