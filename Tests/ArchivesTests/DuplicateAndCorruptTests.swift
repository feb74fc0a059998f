import Archives
import Foundation
import Testing

/// A11 duplicates and A13 corrupt archives.
@Suite("Duplicates and corrupt archives (A11, A13)")
struct DuplicateAndCorruptTests {
    @Test("A11: duplicate and conflicting entries are refused", arguments: Container.allCases, 0..<6)
    func a11Duplicates(container: Container, variant: Int) async throws {
        let (entries, name): ([Entry], String) = switch variant {
        case 0: ([.file("a.txt", "first"), .file("a.txt", "pwned")], "a.txt")
        case 1: ([.file("a", "file"), .dir("a/")], "a/")
        case 2: ([.dir("a/"), .file("a", "file")], "a")
        case 3: ([.file("a", "file"), .file("a/b", "under a file")], "a/b")
        case 4: ([.dir("sub/"), .symlink("l", to: "sub"), .file("l", "over the link")], "l")
        default: ([.file("./x", "first"), .file("x", "second")], "x")
        }
        try await expectRefused({ _ in entries }, as: container, kind: .duplicateEntry, entry: name)
    }

    @Test("A11: a directory entry after the files in it is fine", arguments: Container.allCases)
    func a11DirectoryAfterChildren(container: Container) async throws {
        try await extractOK([.file("d/f.txt", "f"), .dir("d/"), .dir("./")], as: container) { root, counts in
            #expect(counts.directories == 1)
            #expect(contents(root + "/d/f.txt") == "f")
        }
    }

    /// A13 corruptions applied to a good archive's bytes.
    enum Corruption: String, CaseIterable, Sendable {
        case truncated, badCentralDirectory, garbage, emptyFile, emptyArchive, gzipOfText
    }

    @Test("A13: corrupt, truncated and empty archives are 'Invalid … archive (…)'", arguments: Container.allCases, Corruption.allCases)
    func a13Corrupt(container: Container, corruption: Corruption) async throws {
        if corruption == .badCentralDirectory && container != .zip { return }
        if corruption == .gzipOfText && container != .tgz { return }
        let sandbox = try Sandbox()
        let archive = sandbox.path(container.fileName)
        let entries: [Entry] = corruption == .emptyArchive ? [] :
            [.file("a.txt", String(repeating: "hello ", count: 5000)), .file("b.txt", "b")]
        try await Fixtures.build(entries, as: container, at: archive)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        switch corruption {
        case .truncated: bytes = bytes.prefix(bytes.count / 2)
        case .badCentralDirectory:
            // Point the end record's central directory offset past the end of the file.
            let offset = bytes.count - 22 + 16
            bytes.replaceSubrange(offset..<offset + 4, with: [0xF0, 0xFF, 0xFF, 0x7F])
        case .garbage: bytes = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) })
        case .emptyFile: bytes = Data()
        case .emptyArchive: break
        case .gzipOfText:
            try "just some text, not a tar\n".write(toFile: sandbox.path("t.txt"), atomically: false, encoding: .utf8)
            _ = try await Fixtures.python(["gzip", sandbox.path("t.txt"), sandbox.path("t.gz")])
            bytes = try Data(contentsOf: URL(fileURLWithPath: sandbox.path("t.gz")))
        }
        try bytes.write(to: URL(fileURLWithPath: archive))
        do {
            let counts = try SafeExtractor(logger: testLogger).extract(archiveAt: archive, into: sandbox.destination)
            Issue.record("extracted a corrupt archive: \(counts)")
        } catch let error as ArchiveError {
            #expect(error.kind == .invalidArchive, "\(error)")
            let word = (container == .zip && corruption != .garbage && corruption != .emptyFile) ? "zip" : "tar"
            #expect(error.message.hasPrefix("Invalid \(word) archive ("), "\(error)")
        }
        sandbox.expectUntouched()
    }
}
