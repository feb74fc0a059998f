import Archives
import Foundation
import Testing

/// A9: bombs stopped by the size, ratio and count caps, during validation, before writing.
@Suite("Caps (A9)")
struct LimitTests {
    @Test("A9: 1 GB of zeros compressed to ~1 MB is refused quickly", arguments: [Container.zip, .tgz])
    func a9ZeroBomb(container: Container) async throws {
        // The extractor stops after ~200 MB of inflate (ratio 200 x ~1 MB), in pass 1, writing nothing.
        let error = try await expectRefused({ _ in [.file("readme.txt"), .zeros("zeros.bin", size: 1 << 30)] },
                                      as: container, kind: .limitExceeded, entry: "zeros.bin",
                                      extractWithin: .seconds(15))
        #expect(error?.message.contains("ratio") == true, "\(String(describing: error))")
    }

    @Test("A9: the total size cap names the entry that crosses it", arguments: Container.allCases)
    func a9TotalSize(container: Container) async throws {
        let block = String(repeating: "0123456789", count: 60)
        try await expectRefused({ _ in [.file("one", block), .file("two", block)] }, as: container,
                          kind: .limitExceeded, entry: "two", messageContains: "uncompressed bytes",
                          limits: .init(maxTotalBytes: 1000))
    }

    @Test("A9: the ratio cap applies past the grace size", arguments: Container.allCases)
    func a9Ratio(container: Container) async throws {
        let big = String(repeating: "a", count: 200_000)
        try await expectRefused({ _ in [.file("big", big)] }, as: container == .tar ? .tgz : container,
                          kind: .limitExceeded, entry: "big", messageContains: "ratio",
                          limits: .init(maxCompressionRatio: 10, ratioGraceBytes: 1000))
    }

    @Test("A9: 100 000 tiny entries are refused by the default count cap", arguments: [Container.tgz, .zip])
    func a9Count(container: Container) async throws {
        let error = try await expectRefused({ _ in [.many(100_000)] }, as: container, kind: .limitExceeded, entry: nil,
                                      messageContains: "65536 entries")
        #expect(error?.entry == "many/f65536")
    }

    @Test("A9: a zip entry expanding past its declared size is refused")
    func a9ZipDeclaredSize() async throws {
        // Big enough that libarchive hands over data before it notices the size is wrong.
        try await expectRefused({ _ in [.file("liar.txt", String(repeating: "a", count: 3_000_000))] }, as: .zip,
                          kind: .limitExceeded, entry: "liar.txt", messageContains: "declares 10 bytes",
                          patchDeclaredSize: 10)
    }
}
