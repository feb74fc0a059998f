import CLibPQ
import Foundation

/// Removes the password in a conninfo from any text, since libpq may echo parts of the conninfo in its errors.
struct SecretRedactor: Sendable {
    private let secrets: [String]

    init(conninfo: String) {
        var secrets: [String] = []
        var errorMessage: UnsafeMutablePointer<CChar>?
        if let options = PQconninfoParse(conninfo, &errorMessage) {
            var option = options
            while let keyword = option.pointee.keyword {
                if String(cString: keyword) == "password", let value = option.pointee.val {
                    secrets.append(String(cString: value))
                }
                option += 1
            }
            PQconninfoFree(options)
        }
        if let errorMessage { PQfreemem(errorMessage) }
        // A URL carries the password percent-encoded, and libpq may quote either form.
        for secret in secrets {
            if let encoded = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics), encoded != secret {
                secrets.append(encoded)
            }
        }
        self.secrets = secrets.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    func redact(_ text: String) -> String {
        secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "***") }
    }
}
