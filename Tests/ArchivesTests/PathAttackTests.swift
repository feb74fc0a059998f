import Archives
import Foundation
import Testing

/// A1, A2, A10: entry names that try to leave the root or break the filesystem.
@Suite("Entry names (A1, A2, A10)")
struct PathAttackTests {
    static let dotDotNames = ["../sentinel/pwned", "a/../../sentinel/pwned", "..\\sentinel\\pwned",
                              "./../sentinel/pwned", "ok/..\\..\\sentinel\\pwned"]

    @Test("A1: '..' components are refused, naming the entry", arguments: Container.allCases, dotDotNames)
    func a1DotDot(container: Container, name: String) async throws {
        // libarchive's zip reader turns backslashes into slashes in names without any slash.
        let reported = container == .zip && !name.contains("/") ? name.replacingOccurrences(of: "\\", with: "/") : name
        try await expectRefused({ _ in [.file("fine.txt"), .file(name, "pwned")] },
                          as: container, kind: .unsafePath, entry: reported, messageContains: "'..'")
    }

    @Test("A2: absolute paths are refused", arguments: Container.allCases, 0..<5)
    func a2Absolute(container: Container, variant: Int) async throws {
        // The absolute paths aim at the sentinel, so an escape would be visible and harmless.
        let name: (Sandbox) -> String = { sandbox in
            switch variant {
            case 0: sandbox.sentinel + "/pwned"
            case 1: "/" + sandbox.sentinel + "/pwned"  // `//tmp/...`
            case 2: "C:\\pwned"
            case 3: "C:/pwned"
            default: "\\\\server\\share\\pwned"
            }
        }
        var expected = ""
        let error = try await expectRefused({ sandbox in
            expected = name(sandbox)
            return [.file("fine.txt"), .file(expected, "pwned")]
        }, as: container, kind: .unsafePath, entry: nil, messageContains: "absolute")
        #expect(!expected.isEmpty)
        let reported = container == .zip ? expected.replacingOccurrences(of: "\\", with: "/") : expected
        #expect(error?.entry == reported)
        #expect(error?.description.contains(reported) == true)
    }

    @Test("A2: the refusal names the absolute entry", arguments: Container.allCases)
    func a2NamesEntry(container: Container) async throws {
        try await expectRefused({ _ in [.file("C:/pwned", "pwned")] }, as: container, kind: .unsafePath, entry: "C:/pwned")
    }

    @Test("A10: a 10 KB path is refused cleanly", arguments: Container.allCases)
    func a10LongPath(container: Container) async throws {
        let name = Array(repeating: String(repeating: "p", count: 200), count: 50).joined(separator: "/") + "/pwned"
        try await expectRefused({ _ in [.file(name, "x")] }, as: container, kind: .limitExceeded, entry: name,
                          messageContains: "bytes long")
    }

    @Test("A10: a 1000-deep path is refused cleanly", arguments: Container.allCases)
    func a10Deep(container: Container) async throws {
        let name = String(repeating: "d/", count: 1000) + "pwned"
        try await expectRefused({ _ in [.file(name, "x")] }, as: container, kind: .limitExceeded, entry: name,
                          messageContains: "deep")
    }

    @Test("A10: newline and control characters are refused", arguments: Container.allCases, ["bad\nname-pwned", "tab\u{01}pwned"])
    func a10Control(container: Container, name: String) async throws {
        try await expectRefused({ _ in [.file(name, "x")] }, as: container, kind: .unsafePath, entry: name,
                          messageContains: "control character")
    }

    @Test("A10: invalid UTF-8 names are refused", arguments: Container.allCases)
    func a10InvalidUTF8(container: Container) async throws {
        let bytes: [UInt8] = [0x70, 0x77, 0x6E, 0x65, 0x64, 0xFF, 0xFE, 0x2E, 0x74, 0x78, 0x74]
        let error = try await expectRefused({ _ in [.raw(bytes)] }, as: container, kind: .unsafePath, entry: nil,
                                      messageContains: "not valid UTF-8")
        #expect(error?.entry?.hasPrefix("pwned") == true)
    }

    /// Both formats end a name at NUL before libarchive hands it to us (tar fields and
    /// libarchive's strings are NUL-terminated), so the most an attacker gets is the prefix,
    /// which is then checked like any name: inside the root, or refused.
    @Test("A10: a NUL in a name never lets the rest of the name through", arguments: Container.allCases)
    func a10Nul(container: Container) async throws {
        let sandbox = try Sandbox()
        let archive = sandbox.path(container.fileName)
        let bytes = Array("ok".utf8) + [0] + Array("/../../sentinel/pwned".utf8)
        try await Fixtures.build([.raw(bytes, "content")], as: container, at: archive)
        do {
            _ = try SafeExtractor(logger: testLogger).extract(archiveAt: archive, into: sandbox.destination)
            let names = try FileManagerHelpers.tree(sandbox.destination)
            #expect(names == ["ok"], "\(names)")
        } catch let error as ArchiveError {
            #expect(error.kind != .io, "\(error)")
            sandbox.expectUntouched()
        }
        let outside = try FileManagerHelpers.tree(sandbox.sentinel)
        #expect(outside == ["keep.txt"])
    }

    @Test("A10: valid UTF-8 names round-trip", arguments: Container.allCases)
    func a10UTF8(container: Container) async throws {
        let names = ["日本語.txt", "ünïcödé/ファイル.txt", "emoji-🎉.txt", "space name.txt"]
        try await extractOK(names.map { .file($0, "content of \($0)") }, as: container) { root, counts in
            #expect(counts.files == names.count)
            for name in names {
                #expect(contents(root + "/" + name) == "content of \(name)", "\(name)")
            }
        }
    }
}

/// Small filesystem listing helper for assertions.
enum FileManagerHelpers {
    /// Every path under `root`, relative, sorted; symlinks are listed, not followed.
    static func tree(_ root: String) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        return (enumerator.allObjects as? [String] ?? []).sorted()
    }
}
