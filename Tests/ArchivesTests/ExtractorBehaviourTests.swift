@testable import Archives
import Foundation
import Testing

/// Destination handling, format detection, and the pure path rules.
@Suite("Extractor behaviour")
struct ExtractorBehaviourTests {
    @Test("The format is detected from content, whatever the file is called", arguments: Container.allCases)
    func detection(container: Container) async throws {
        let sandbox = try Sandbox()
        let archive = sandbox.path(container.fileName)
        try await Fixtures.build([.file("a.txt", "a")], as: container, at: archive)
        let expected: ArchiveFormat = switch container {
        case .zip: .zip
        case .tar: .tar
        case .tgz: .tarGzip
        }
        #expect(try ArchiveFormat.detect(path: archive) == expected)
    }

    @Test("A destination that is not empty is refused and left alone")
    func busyDestination() async throws {
        let sandbox = try Sandbox()
        let archive = sandbox.path("a.zip")
        try await Fixtures.build([.file("a.txt", "a")], as: .zip, at: archive)
        let error = #expect(throws: ArchiveError.self) {
            try SafeExtractor(logger: testLogger).extract(archiveAt: archive, into: sandbox.sentinel)
        }
        #expect(error?.kind == .io)
        #expect(try FileManagerHelpers.tree(sandbox.sentinel) == ["keep.txt"])
    }

    @Test("An existing empty destination is used")
    func emptyDestination() async throws {
        let sandbox = try Sandbox()
        let archive = sandbox.path("a.tgz")
        try await Fixtures.build([.file("a.txt", "a")], as: .tgz, at: archive)
        try FileManager.default.createDirectory(atPath: sandbox.destination, withIntermediateDirectories: false)
        let counts = try SafeExtractor(logger: testLogger).extract(archiveAt: archive, into: sandbox.destination)
        #expect(counts == ArchiveCounts(files: 1, totalBytes: 1))
        #expect(contents(sandbox.destination + "/a.txt") == "a")
    }

    @Test("Removing a partial extraction never follows symlinks")
    func removalDoesNotFollowLinks() async throws {
        let sandbox = try Sandbox()
        let tree = sandbox.path("partial")
        try FileManager.default.createDirectory(atPath: tree + "/ro/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: tree + "/ro/to-sentinel", withDestinationPath: sandbox.sentinel)
        try FileManager.default.createSymbolicLink(atPath: tree + "/to-file", withDestinationPath: sandbox.sentinel + "/keep.txt")
        #expect(chmod(tree + "/ro", 0o555) == 0)
        try FileTree.remove(tree)
        #expect(!FileManager.default.fileExists(atPath: tree))
        sandbox.expectUntouched()
    }

    @Test("Path policy: normalisation and refusals", arguments: [
        ("a/b", "a/b"), ("./a//b/", "a/b"), ("a/./b", "a/b"), ("./", ""), ("日本語/x", "日本語/x"),
        ("/etc/passwd", nil), ("//x", nil), ("C:\\x", nil), ("c:/x", nil), ("\\x", nil),
        ("../x", nil), ("a/../../x", nil), ("..\\x", nil), ("a/..", nil), ("a\nb", nil),
    ] as [(String, String?)])
    func policy(name: String, expected: String?) {
        let result = try? EntryPathPolicy.normalize(Array(name.utf8), maxLength: 1024, maxDepth: 64)
        #expect(result == expected)
    }

    @Test("Errors render kind, message, entry and cause")
    func errorDescription() {
        let error = ArchiveError(.unsafePath, "Entry has a '..' path component", entry: "../x\n", cause: "EPERM")
        #expect(error.description == "unsafePath: Entry has a '..' path component (entry: '../x\\n') (cause: EPERM)")
        #expect(ArchiveError("plain").description == "library: plain")
    }
}
