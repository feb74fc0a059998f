import Crypto
import _CryptoExtras
import Foundation

/// Salted PBKDF2-HMAC-SHA256 password hashes, stored as `pbkdf2-sha256$ROUNDS$SALT$HASH` (base64).
///
/// The round count travels with each hash, so raising the configured count only affects new
/// hashes; verification uses the stored count.
struct PasswordHasher: Sendable {
    /// OWASP's floor for PBKDF2-SHA256 is far above this; this is the library's hard minimum.
    static let minimumRounds = 210_000
    let rounds: Int

    func hash(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = rng.next() }
        let key = try derive(password, salt: salt, rounds: rounds)
        return "pbkdf2-sha256$\(rounds)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let rounds = Int(parts[1]),
              rounds >= Self.minimumRounds, let salt = Data(base64Encoded: String(parts[2])),
              let expected = Data(base64Encoded: String(parts[3])),
              let actual = try? derive(password, salt: [UInt8](salt), rounds: rounds)
        else { return false }
        return constantTimeEquals([UInt8](expected), actual)
    }

    private func derive(_ password: String, salt: [UInt8], rounds: Int) throws -> [UInt8] {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
        return key.withUnsafeBytes { Array($0) }
    }
}

/// Compares without an early exit, so timing does not tell how much matched.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in a.indices { diff |= a[i] ^ b[i] }
    return diff == 0
}
