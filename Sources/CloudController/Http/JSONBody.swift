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

    /// Decodes `T`, refusing keys outside `allowedKeys` (top level) with 422.
    func decode<T: Decodable>(_ type: T.Type, from request: Request, allowedKeys: Set<String>) async throws -> T {
        let buffer = try await collect(request)
        return try Self.decode(type, from: Data(buffer.readableBytesView), allowedKeys: allowedKeys)
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, allowedKeys: Set<String>) throws -> T {
        guard !data.isEmpty else { throw APIError.messageParse("the request body is empty") }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw APIError.messageParse("the body is not valid JSON")
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
