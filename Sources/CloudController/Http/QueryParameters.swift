import Foundation

/// The query string, parsed strictly: malformed percent-encoding, duplicate or unknown
/// parameters are 400 `CF-BadQueryParameter`, never a 500.
struct QueryParameters: Sendable {
    /// Decoded name -> decoded value.
    private(set) var values: [String: String] = [:]

    init(rawQuery: String?) throws {
        guard let rawQuery, !rawQuery.isEmpty else { return }
        for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(String(parts[0]))
            let value = parts.count > 1 ? try Self.decode(String(parts[1])) : ""
            guard !name.isEmpty else { throw APIError.badQuery("empty parameter name") }
            if values[name] != nil {
                throw APIError.badQuery("'\(name)' is given more than once")
            }
            values[name] = value
        }
    }

    subscript(name: String) -> String? { values[name] }

    /// Refuses parameters outside `allowed`.
    func requireOnly(_ allowed: Set<String>) throws {
        let unknown = Set(values.keys).subtracting(allowed).sorted()
        if !unknown.isEmpty {
            throw APIError.badQuery("Unknown query parameter(s): " + unknown.map { "'\($0)'" }.joined(separator: ", ")
                + ". Valid parameters are: " + allowed.sorted().map { "'\($0)'" }.joined(separator: ", "))
        }
    }

    /// A comma list, percent-decoded before splitting; empty elements are refused.
    func list(_ name: String) throws -> [String]? {
        guard let value = values[name] else { return nil }
        let items = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if items.contains(where: \.isEmpty) {
            throw APIError.badQuery("\(name) must be a comma-separated list of non-empty values")
        }
        return items
    }

    /// A bounded integer.
    func int(_ name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let value = values[name] else { return nil }
        guard let n = Int(value), range.contains(n) else {
            throw APIError.badQuery("\(name) must be an integer between \(range.lowerBound) and \(range.upperBound)")
        }
        return n
    }

    /// A boolean (`true`/`false`).
    func bool(_ name: String) throws -> Bool? {
        guard let value = values[name] else { return nil }
        switch value {
        case "true": return true
        case "false": return false
        default: throw APIError.badQuery("\(name) must be true or false")
        }
    }

    /// Percent-encodes for links so the filters round-trip.
    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~,")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    private static func decode(_ s: String) throws -> String {
        let plus = s.replacingOccurrences(of: "+", with: " ")
        guard let decoded = plus.removingPercentEncoding else {
            throw APIError.badQuery("malformed percent-encoding in '\(s.prefix(64))'")
        }
        if decoded.contains("\0") { throw APIError.badQuery("NUL bytes are not allowed") }
        return decoded
    }
}
