import Crypto
import Foundation

/// Seals secrets kept in the database (e.g. credentials inside buildpack URLs) with AES-GCM
/// under a key derived from the controller's signing key, so a database dump alone does not
/// reveal them (SECURITY.md F8).
struct SecretBox: Sendable {
    private let keyBytes: [UInt8]

    init(secret: String, purpose: String) {
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: Data(secret.utf8)),
                                         info: Data("cf-like \(purpose)".utf8), outputByteCount: 32)
        keyBytes = key.withUnsafeBytes { Array($0) }
    }

    func seal(_ plaintext: String) throws -> String {
        let box = try AES.GCM.seal(Data(plaintext.utf8), using: SymmetricKey(data: keyBytes))
        guard let combined = box.combined else { throw APIError.unknown(requestID: "seal") }
        return combined.base64EncodedString()
    }

    func open(_ sealed: String) throws -> String {
        guard let data = Data(base64Encoded: sealed) else { throw APIError.unknown(requestID: "open") }
        let box = try AES.GCM.SealedBox(combined: data)
        return String(decoding: try AES.GCM.open(box, using: SymmetricKey(data: keyBytes)), as: UTF8.self)
    }
}
