import Testing

@testable import AppRouter

@Suite struct BodyFramerTests {
    /// Feeds `text` in pieces of `step` bytes; returns where the body ended (offset in the
    /// whole input) or the error.
    func feed(_ framer: BodyFramer, _ text: String, step: Int) -> Result<Int, BodyError>? {
        var framer = framer
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = min(step, bytes.count - offset)
            let outcome = Array(bytes[offset..<(offset + n)]).withUnsafeBytes { framer.advance($0, from: 0, to: n) }
            switch outcome {
            case .needMore: offset += n
            case .complete(let end): return .success(offset + end)
            case .invalid(let error): return .failure(error)
            }
        }
        return nil
    }

    /// The payload of a chunked body, by `step`.
    func dechunk(_ text: String) -> String? {
        var framer = BodyFramer.chunked
        let bytes = Array(text.utf8)
        var payload: [UInt8] = []
        return bytes.withUnsafeBytes { p -> String? in
            var i = 0
            while true {
                switch framer.step(p, from: i, to: p.count) {
                case .data(let s, let e): payload += bytes[s..<e]; i = e
                case .complete: return String(decoding: payload, as: UTF8.self)
                case .needMore, .invalid: return nil
                }
            }
        }
    }

    @Test func lengthFraming() {
        #expect(feed(.length(5), "hello world", step: 100) == .success(5))
        #expect(feed(.length(5), "hello world", step: 2) == .success(5))
        #expect(feed(.length(5), "hel", step: 2) == nil)
        var none = BodyFramer.none
        let end = [UInt8]("x".utf8).withUnsafeBytes { none.advance($0, from: 0, to: 1) }
        #expect(end == .complete(end: 0))
        #expect(BodyFramer.length(0).isComplete)
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func chunkedFramingAcrossAnySplit(step: Int) {
        let body = "5\r\nhello\r\n6;ext=1\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
        #expect(feed(.chunked, body + "NEXT", step: step) == .success(body.utf8.count))
    }

    @Test func dechunkedPayload() {
        #expect(dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") == "hello world")
        #expect(dechunk("3;a=b\r\nabc\r\n0\r\nTrailer: x\r\n\r\n") == "abc")
    }

    @Test(arguments: [
        ("5\r\nhelloX\r\n0\r\n\r\n", BodyError.missingChunkTerminator),
        ("5\nhello\r\n0\r\n\r\n", .bareLineFeed),
        ("5\r\nhello\n0\r\n\r\n", .bareLineFeed),
        ("g\r\n", .invalidChunkSize),
        ("-5\r\n", .invalidChunkSize),
        ("\r\n", .invalidChunkSize),
        ("1234567890abcdef0\r\n", .chunkSizeTooLarge),
        ("5;\u{1}\r\n", .invalidChunkExtension),
        ("0\r\nbad trailer\nx", .bareLineFeed),
        ("0\r\n\r\r", .missingChunkTerminator),
    ])
    func refusesBrokenChunking(_ text: String, _ error: BodyError) {
        #expect(feed(.chunked, text, step: 1000) == .failure(error))
        #expect(feed(.chunked, text, step: 1) == .failure(error))
    }

    @Test func boundsTrailersAndExtensions() {
        let longExtension = "1;" + String(repeating: "e", count: BodyFramer.maxChunkExtensionBytes + 10) + "\r\n"
        #expect(feed(.chunked, longExtension, step: 4096) == .failure(.invalidChunkExtension))
        let longTrailer = "0\r\nX: " + String(repeating: "t", count: BodyFramer.maxTrailerBytes + 10) + "\r\n\r\n"
        #expect(feed(.chunked, longTrailer, step: 4096) == .failure(.trailersTooLarge))
    }

    @Test func untilCloseNeverEnds() {
        #expect(feed(.untilClose, String(repeating: "x", count: 100), step: 10) == nil)
        #expect(BodyFramer.untilClose.isUntilClose)
    }

    @Test func staysFailedAfterAnError() {
        var framer = BodyFramer.chunked
        let bad = Array("zz\r\n".utf8)
        let first = bad.withUnsafeBytes { framer.advance($0, from: 0, to: $0.count) }
        #expect(first == .invalid(.invalidChunkSize))
        let good = Array("0\r\n\r\n".utf8)
        let second = good.withUnsafeBytes { framer.advance($0, from: 0, to: $0.count) }
        #expect(second == .invalid(.invalidChunkSize))
    }
}
