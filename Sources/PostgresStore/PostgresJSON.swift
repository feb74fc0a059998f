import Foundation

/// JSON text bound as a `json`/`jsonb` parameter or read from such a column.
public struct PostgresJSON: PostgresBindable, PostgresDecodable, Sendable, Equatable {
    /// The JSON document as text.
    public var text: String

    /// Wraps JSON text as-is; PostgreSQL validates it.
    public init(_ jsonText: String) {
        self.text = jsonText
    }

    /// Encodes `value` with `JSONEncoder` (sorted keys, so equal values give equal text).
    public init<T: Encodable>(encoding value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        self.text = String(decoding: data, as: UTF8.self)
    }

    /// Reads JSON text from a column.
    public init(postgresText: String) throws {
        self.text = postgresText
    }

    /// Decodes the document with `JSONDecoder`.
    public func decode<T: Decodable>(as type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    public var postgresText: String? { text }
}
