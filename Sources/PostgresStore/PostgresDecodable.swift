import Foundation

/// A Swift value decoded from one non-NULL cell in libpq's text format.
public protocol PostgresDecodable {
    /// Parses the cell's text; throws a `.decoding` error when it does not fit.
    init(postgresText: String) throws
}

extension PostgresError {
    static func decoding(_ type: Any.Type, _ why: String) -> PostgresError {
        PostgresError(kind: .decoding, message: "cannot decode \(type): \(why)")
    }
}

extension String: PostgresDecodable {
    public init(postgresText: String) throws { self = postgresText }
}

extension Int: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = Int(postgresText) else { throw PostgresError.decoding(Int.self, "not an integer") }
        self = value
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = Int32(postgresText) else { throw PostgresError.decoding(Int32.self, "not a 32-bit integer") }
        self = value
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = Int64(postgresText) else { throw PostgresError.decoding(Int64.self, "not a 64-bit integer") }
        self = value
    }
}

extension Bool: PostgresDecodable {
    public init(postgresText: String) throws {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresError.decoding(Bool.self, "not t or f")
        }
    }
}

extension Double: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = Double(postgresText) else { throw PostgresError.decoding(Double.self, "not a number") }
        self = value
    }
}

extension UUID: PostgresDecodable {
    public init(postgresText: String) throws {
        guard let value = UUID(uuidString: postgresText) else { throw PostgresError.decoding(UUID.self, "not a UUID") }
        self = value
    }
}

extension Date: PostgresDecodable {
    /// Accepts `timestamptz`/`timestamp` (read as UTC) and `date` text in ISO DateStyle.
    public init(postgresText: String) throws {
        self = try PostgresTimestamp.parse(postgresText)
    }
}

extension Data: PostgresDecodable {
    /// Accepts bytea in hex format (`\x...`), the server's default output.
    public init(postgresText: String) throws {
        let bytes = Array(postgresText.utf8)
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x"), bytes.count % 2 == 0 else {
            throw PostgresError.decoding(Data.self, "not bytea hex format")
        }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw PostgresError.decoding(Data.self, "bad hex digit")
            }
        }
        var out = Data(capacity: (bytes.count - 2) / 2)
        var index = 2
        while index < bytes.count {
            out.append(try nibble(bytes[index]) << 4 | nibble(bytes[index + 1]))
            index += 2
        }
        self = out
    }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    /// Accepts a one-dimensional array literal; NULL elements are an error (decode into a non-optional element type).
    public init(postgresText: String) throws {
        let elements = try PostgresArrayLiteral.parse(postgresText)
        self = try elements.map { element in
            guard let element else { throw PostgresError.decoding([Element].self, "array contains NULL") }
            return try Element(postgresText: element)
        }
    }
}
