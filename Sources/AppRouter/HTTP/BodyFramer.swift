/// A body framing fault found while streaming: the message cannot be delimited any more, so
/// both connections are cut.
enum BodyError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidChunkSize
    case chunkSizeTooLarge
    case invalidChunkExtension
    case missingChunkTerminator
    case bareLineFeed
    case trailersTooLarge

    var description: String {
        switch self {
        case .invalidChunkSize: return "malformed chunk size"
        case .chunkSizeTooLarge: return "chunk size too large"
        case .invalidChunkExtension: return "malformed chunk extension"
        case .missingChunkTerminator: return "chunk data not followed by CRLF"
        case .bareLineFeed: return "line in chunked framing ended by LF without CR"
        case .trailersTooLarge: return "trailer section too large"
        }
    }
}

/// Tracks where a message body ends while its bytes stream past (RFC 9112 6, 7.1): by length,
/// by chunked framing (validated strictly, extensions and trailers bounded) or by connection
/// close. It never copies or buffers; callers forward the byte ranges it accepts.
struct BodyFramer: Sendable {
    /// Result of consuming input.
    enum Advance: Equatable {
        /// Every byte up to the input's end belongs to this body; more are expected.
        case needMore
        /// The body ended; bytes from `end` on belong to whatever follows.
        case complete(end: Int)
        case invalid(BodyError)
    }

    /// One step when the body's payload is wanted without its framing (de-chunking).
    enum Step: Equatable {
        case data(start: Int, end: Int)
        case needMore
        case complete(end: Int)
        case invalid(BodyError)
    }

    private enum State: Equatable {
        case done
        case failed(BodyError)
        case length(remaining: Int64)
        case untilClose
        case chunkSize(value: UInt64, digits: Int)
        case chunkExtension(value: UInt64, length: Int)
        case chunkSizeLF(value: UInt64)
        case chunkData(remaining: UInt64)
        case chunkDataCR
        case chunkDataLF
        case trailerLineStart
        case trailerLine
        case trailerLF
        case finalLF
    }

    static let maxChunkExtensionBytes = 4096
    static let maxTrailerBytes = 64 * 1024

    private var state: State
    private var trailerBytes = 0

    /// A body of `length` bytes (0 = none).
    static func length(_ length: Int64) -> BodyFramer { BodyFramer(state: length > 0 ? .length(remaining: length) : .done) }
    /// A chunked body.
    static var chunked: BodyFramer { BodyFramer(state: .chunkSize(value: 0, digits: 0)) }
    /// A body that ends when the connection closes (responses only).
    static var untilClose: BodyFramer { BodyFramer(state: .untilClose) }
    /// No body at all.
    static var none: BodyFramer { BodyFramer(state: .done) }

    private init(state: State) { self.state = state }

    /// The body has been fully seen.
    var isComplete: Bool { state == .done }
    /// The body ends only at connection close.
    var isUntilClose: Bool { state == .untilClose }

    /// Consumes `p[from..<to]` as body bytes (framing included) and says where the body ends.
    @inline(__always)
    mutating func advance(_ p: UnsafeRawBufferPointer, from: Int, to: Int) -> Advance {
        switch state {
        case .done:
            return .complete(end: from)
        case .untilClose:
            return .needMore
        case .length(let remaining):
            let available = Int64(to - from)
            if available < remaining {
                state = .length(remaining: remaining - available)
                return .needMore
            }
            state = .done
            return .complete(end: from + Int(remaining))
        default:
            var i = from
            while true {
                switch step(p, from: i, to: to) {
                case .data(_, let end): i = end
                case .needMore: return .needMore
                case .complete(let end): return .complete(end: end)
                case .invalid(let error): return .invalid(error)
                }
            }
        }
    }

    /// Consumes framing up to the next payload range and returns it, or says why it stopped.
    mutating func step(_ p: UnsafeRawBufferPointer, from: Int, to: Int) -> Step {
        var i = from
        while true {
            switch state {
            case .done:
                return .complete(end: i)
            case .failed(let error):
                return .invalid(error)
            case .untilClose:
                return i < to ? .data(start: i, end: to) : .needMore
            case .length(let remaining):
                guard i < to else { return .needMore }
                let n = min(Int64(to - i), remaining)
                state = n == remaining ? .done : .length(remaining: remaining - n)
                return .data(start: i, end: i + Int(n))
            case .chunkData(let remaining):
                guard i < to else { return .needMore }
                let n = min(UInt64(to - i), remaining)
                state = n == remaining ? .chunkDataCR : .chunkData(remaining: remaining - n)
                return .data(start: i, end: i + Int(n))
            default:
                break
            }
            guard i < to else { return .needMore }
            let c = p[i]
            i += 1
            switch state {
            case .chunkSize(let value, let digits):
                if let d = HTTPSyntax.hexValue(c) {
                    guard digits < 15 else { return fail(.chunkSizeTooLarge) }
                    state = .chunkSize(value: value << 4 | UInt64(d), digits: digits + 1)
                } else if digits > 0 && (c == UInt8(ascii: ";") || HTTPSyntax.isWhitespace(c)) {
                    state = .chunkExtension(value: value, length: 1)
                } else if digits > 0 && c == HTTPSyntax.cr {
                    state = .chunkSizeLF(value: value)
                } else if c == HTTPSyntax.lf {
                    return fail(.bareLineFeed)
                } else {
                    return fail(.invalidChunkSize)
                }
            case .chunkExtension(let value, let length):
                if c == HTTPSyntax.cr {
                    state = .chunkSizeLF(value: value)
                } else if c == HTTPSyntax.lf {
                    return fail(.bareLineFeed)
                } else if HTTPSyntax.isFieldValueChar(c), length < Self.maxChunkExtensionBytes {
                    state = .chunkExtension(value: value, length: length + 1)
                } else {
                    return fail(.invalidChunkExtension)
                }
            case .chunkSizeLF(let value):
                guard c == HTTPSyntax.lf else { return fail(.missingChunkTerminator) }
                state = value == 0 ? .trailerLineStart : .chunkData(remaining: value)
            case .chunkDataCR:
                guard c == HTTPSyntax.cr else { return fail(c == HTTPSyntax.lf ? .bareLineFeed : .missingChunkTerminator) }
                state = .chunkDataLF
            case .chunkDataLF:
                guard c == HTTPSyntax.lf else { return fail(.missingChunkTerminator) }
                state = .chunkSize(value: 0, digits: 0)
            case .trailerLineStart:
                if c == HTTPSyntax.cr {
                    state = .finalLF
                } else {
                    guard c != HTTPSyntax.lf else { return fail(.bareLineFeed) }
                    guard HTTPSyntax.isTokenChar(c) else { return fail(.invalidChunkExtension) }
                    state = .trailerLine
                    trailerBytes += 1
                }
            case .trailerLine:
                trailerBytes += 1
                guard trailerBytes <= Self.maxTrailerBytes else { return fail(.trailersTooLarge) }
                if c == HTTPSyntax.cr {
                    state = .trailerLF
                } else if c == HTTPSyntax.lf {
                    return fail(.bareLineFeed)
                } else if !HTTPSyntax.isFieldValueChar(c) {
                    return fail(.invalidChunkExtension)
                }
            case .trailerLF:
                guard c == HTTPSyntax.lf else { return fail(.missingChunkTerminator) }
                state = .trailerLineStart
            case .finalLF:
                guard c == HTTPSyntax.lf else { return fail(.missingChunkTerminator) }
                state = .done
                return .complete(end: i)
            default:
                preconditionFailure("payload states are handled above")
            }
        }
    }

    private mutating func fail(_ error: BodyError) -> Step {
        state = .failed(error)
        return .invalid(error)
    }
}
