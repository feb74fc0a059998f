import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PlatformModels

/// Reading request bodies and writing JSON answers, with CF's error semantics: a body over the
/// cap is 413, unparsable JSON 400 `CF-MessageParseError`, a wrong field 422 naming the field,
/// an unknown field 422 "Unknown field(s)".
struct JSONBody {
    let maxBytes: Int

    /// Collects the body up to the cap (checking Content-Length first so nothing is read when it is over).
    func collect(_ request: Request) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBytes {
            throw APIError.bodyTooLarge(limit: maxBytes)
        }
        var request = request
        do {
            return try await request.collectBody(upTo: maxBytes)
        } catch {
            throw APIError.bodyTooLarge(limit: maxBytes)
        }
    }

    /// Decodes `T`, refusing keys outside `allowedKeys` (top level) with 422. `repairingText`:
    /// a body that is not JSON only for its text (invalid UTF-8, lone surrogate escapes, as
    /// app output can carry) is read with those replaced by U+FFFD, for the internal batches
    /// that carry such text.
    func decode<T: Decodable>(_ type: T.Type, from request: Request, allowedKeys: Set<String>,
                              repairingText: Bool = false) async throws -> T {
        let buffer = try await collect(request)
        return try Self.decode(type, from: Data(buffer.readableBytesView), allowedKeys: allowedKeys, repairingText: repairingText)
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, allowedKeys: Set<String>, repairingText: Bool = false) throws -> T {
        guard !data.isEmpty else { throw APIError.messageParse("the request body is empty") }
        var data = data
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            guard repairingText, let repaired = Self.repairingText(data),
                  let parsed = try? JSONDecoder().decode(JSONValue.self, from: repaired)
            else { throw APIError.messageParse("the body is not valid JSON") }
            data = repaired
            value = parsed
        }
        guard let object = value.objectValue else {
            throw APIError.messageParse("the body must be a JSON object")
        }
        let unknown = Set(object.keys).subtracting(allowedKeys).sorted()
        if !unknown.isEmpty {
            throw APIError.unprocessable("Unknown field(s): " + unknown.map { "'\($0)'" }.joined(separator: ", "))
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw APIError.unprocessable(Self.describe(error))
        }
    }

    /// `data` with invalid UTF-8 and `\u` escapes of lone surrogates replaced by U+FFFD and
    /// raw control characters inside strings escaped, or nil when it holds none of these (so
    /// the body is broken some other way). Escapes are skipped as pairs, so a quote after a
    /// backslash never ends a string and no `\\` is misread.
    static func repairingText(_ data: Data) -> Data? {
        let bytes = Array(String(decoding: data, as: UTF8.self).utf8)
        var changed = !bytes.elementsEqual(data)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var inString = false
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
                let width = Self.escapeWidth(bytes, at: i)
                if width == 0 {
                    out.append(contentsOf: Array("\\ufffd".utf8))
                    changed = true
                    i += 6
                } else {
                    out.append(contentsOf: bytes[i..<(i + width)])
                    i += width
                }
                continue
            }
            if b == UInt8(ascii: "\"") { inString.toggle() }
            if inString, b < 0x20 {
                out.append(contentsOf: Array(String(format: "\\u%04x", b).utf8))
                changed = true
            } else {
                out.append(b)
            }
            i += 1
        }
        return changed ? Data(out) : nil
    }

    /// The bytes of the escape at `i` to keep as they are: 2 (`\n`, `\"`, ...), 6 (`\uXXXX`),
    /// 12 (a surrogate pair); 0 for a lone surrogate, 6 bytes to replace.
    private static func escapeWidth(_ bytes: [UInt8], at i: Int) -> Int {
        func unit(_ at: Int) -> UInt32? {
            guard at + 6 <= bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u"),
                  bytes[(at + 2)..<(at + 6)].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) })
            else { return nil }
            return UInt32(String(decoding: bytes[(at + 2)..<(at + 6)], as: UTF8.self), radix: 16)
        }
        guard let first = unit(i) else { return 2 }
        switch first {
        case 0xD800...0xDBFF:
            if let low = unit(i + 6), (0xDC00...0xDFFF).contains(low) { return 12 }
            return 0
        case 0xDC00...0xDFFF:
            return 0
        default:
            return 6
        }
    }

    /// Turns a DecodingError into "<field> must be ..." / "<field> is required".
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            return "\(path(ctx.codingPath + [key])) is required"
        case .typeMismatch(let type, let ctx):
            return "\(path(ctx.codingPath)) must be \(Self.typeName(type))"
        case .valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath)) must be \(Self.typeName(type)), not null"
        case .dataCorrupted(let ctx):
            return "\(path(ctx.codingPath)) is invalid"
        @unknown default:
            return "the request body is invalid"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if name.hasPrefix("String") { return "a string" }
        if name.hasPrefix("Int") { return "an integer" }
        if name.hasPrefix("Bool") { return "a boolean" }
        if name.hasPrefix("Array") { return "an array" }
        if name.hasPrefix("Dictionary") { return "an object" }
        return "an object"
    }
}

/// JSON answers.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let data = try encoder.encode(value)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func noContent() -> Response {
        Response(status: .noContent)
    }
}
