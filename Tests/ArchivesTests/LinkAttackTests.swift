import Archives
import Foundation
import Testing

/// A3–A7: symlinks, hardlinks and special files.
@Suite("Links and special files (A3–A7)")
struct LinkAttackTests {
    @Test("A3: symlinks pointing outside the root are refused", arguments: Container.allCases, 0..<6)
    func a3Outside(container: Container, variant: Int) async throws {
        let (name, target): (String, (Sandbox) -> String) = switch variant {
        case 0: ("link", { _ in "/etc" })
        case 1: ("link", { $0.sentinel })
        case 2: ("link", { _ in "../sentinel" })
        case 3: ("a/link", { _ in "../../sentinel" })
        case 4: ("a/link", { _ in "..\\..\\sentinel" })
        default: ("a/b/link", { _ in "../c/../../.." })
        }
        try await expectRefused({ sandbox in [.dir("a/"), .symlink(name, to: target(sandbox))] },
                          as: container, kind: .unsafeLink, entry: name, messageContains: "outside of the root folder")
    }

    @Test("A3: a symlink escaping through another symlink is refused, in either order", arguments: Container.allCases, [false, true])
    func a3Chained(container: Container, reversed: Bool) async throws {
        // x/up -> .. is the root (fine); y -> x/up/.. is then above the root.
        var entries: [Entry] = [.dir("x/"), .symlink("x/up", to: ".."), .symlink("y", to: "x/up/..")]
        if reversed { entries = [.dir("x/"), .symlink("y", to: "x/up/.."), .symlink("x/up", to: "..")] }
        try await expectRefused({ _ in entries }, as: container, kind: .unsafeLink, entry: "y")
    }

    @Test("A3: symlink loops are refused", arguments: Container.allCases)
    func a3Loop(container: Container) async throws {
        try await expectRefused({ _ in [.symlink("a", to: "b"), .symlink("b", to: "a/..")] },
                          as: container, kind: .unsafeLink, entry: nil)
    }

    @Test("A4: an entry under an outside symlink is refused at the symlink", arguments: Container.allCases)
    func a4OutsideLink(container: Container) async throws {
        try await expectRefused({ sandbox in [.symlink("link", to: sandbox.sentinel), .file("link/pwned", "pwned")] },
                          as: container, kind: .unsafeLink, entry: "link")
    }

    @Test("A4: nothing is written through a symlink, even one inside the root", arguments: Container.allCases)
    func a4InsideLink(container: Container) async throws {
        try await expectRefused({ _ in [.dir("sub/"), .symlink("link", to: "sub"), .file("link/pwned", "pwned")] },
                          as: container, kind: .unsafeLink, entry: "link/pwned", messageContains: "symlink")
    }

    @Test("A5: symlinks inside the root are preserved", arguments: Container.allCases)
    func a5Inside(container: Container) async throws {
        let entries: [Entry] = [
            .file("releases/1/index.html", "<h1>1</h1>"),
            .symlink("public/current", to: "releases/1"),
            .symlink("current", to: "releases/1"),
            .file("node_modules/pkg/bin/x", "#!/bin/sh\n", mode: 0o755),
            .symlink("node_modules/.bin/x", to: "../pkg/bin/x"),
            .symlink("dangling", to: "not/there"),
        ]
        try await extractOK(entries, as: container) { root, counts in
            #expect(counts.symlinks == 4)
            #expect(readLink(root + "/public/current") == "releases/1")
            #expect(readLink(root + "/node_modules/.bin/x") == "../pkg/bin/x")
            #expect(readLink(root + "/dangling") == "not/there")
            #expect(contents(root + "/current/index.html") == "<h1>1</h1>")
            #expect(contents(root + "/node_modules/.bin/x") == "#!/bin/sh\n")
        }
    }

    @Test("A5: symlinks are refused when the options forbid them", arguments: Container.allCases)
    func a5Forbidden(container: Container) async throws {
        try await expectRefused({ _ in [.file("a.txt"), .symlink("link", to: "a.txt")] }, as: container,
                          kind: .unsupportedEntryType, entry: "link", options: .init(allowSymlinks: false))
    }

    @Test("A6: hardlinks outside, to unseen paths, or carrying data are refused", arguments: Container.tarOnly, 0..<5)
    func a6Hardlinks(container: Container, variant: Int) async throws {
        let entries: (Sandbox) -> [Entry] = { sandbox in
            switch variant {
            case 0: [.file("a.txt"), .hardlink("h", to: sandbox.sentinel + "/keep.txt")]
            case 1: [.file("a.txt"), .hardlink("h", to: "../sentinel/keep.txt")]
            case 2: [.hardlink("h", to: "later.txt"), .file("later.txt")]
            case 3: [.file("a.txt", "original"), .hardlink("h", to: "a.txt", data: "pwned")]
            default: [.dir("d/"), .hardlink("h", to: "d")]
            }
        }
        // GNU tar hardlinks have no body, so libarchive reads the smuggled data as a damaged
        // next header: refused as an invalid archive instead (the pax test below sees the data).
        if variant == 3 {
            let error = try await expectRefused(entries, as: container, kind: .invalidArchive, entry: nil)
            #expect(error?.message.hasPrefix("Invalid tar archive (") == true)
        } else {
            try await expectRefused(entries, as: container, kind: .unsafeLink, entry: "h")
        }
    }

    @Test("A6: hardlinks with data are refused in pax archives too", arguments: Container.tarOnly)
    func a6HardlinkDataPax(container: Container) async throws {
        let sandbox = try Sandbox()
        let archive = sandbox.path("pax.tar")
        // An explicit pax `size` record is what makes libarchive honour data on a hardlink.
        var link = Entry.hardlink("h", to: "a.txt", data: "pwned")
        link.pax = ["size": "5"]
        try await Fixtures.build([.file("a.txt", "original"), link], as: container, at: archive, pax: true)
        let error = #expect(throws: ArchiveError.self) {
            try SafeExtractor(logger: testLogger).extract(archiveAt: archive, into: sandbox.destination)
        }
        #expect(error?.kind == .unsafeLink && error?.entry == "h", "\(String(describing: error))")
        #expect(error?.message.contains("carries") == true)
        sandbox.expectUntouched()
    }

    @Test("A6: a hardlink to an earlier file inside the root is extracted as a hardlink", arguments: Container.tarOnly)
    func a6Inside(container: Container) async throws {
        try await extractOK([.file("a.txt", "same"), .hardlink("h", to: "a.txt")], as: container) { root, counts in
            #expect(counts.files == 2)
            #expect(contents(root + "/h") == "same")
            #expect(FileFacts(root + "/h")?.inode == FileFacts(root + "/a.txt")?.inode)
        }
    }

    @Test("A7: devices, FIFOs and sockets are refused", arguments: [
        (Container.tar, "chr"), (.tar, "blk"), (.tar, "fifo"), (.tgz, "chr"), (.tgz, "fifo"),
        (.zip, "chr"), (.zip, "sock"),
    ])
    func a7Special(container: Container, type: String) async throws {
        try await expectRefused({ _ in [.file("a.txt"), .special("dev-pwned", type)] }, as: container,
                          kind: .unsupportedEntryType, entry: "dev-pwned")
    }

    /// libarchive's zip reader reports a FIFO mode in the external attributes as a regular
    /// file, so the "FIFO" lands as an ordinary empty file: neutralised, never a FIFO on disk.
    @Test("A7: a zip 'FIFO' becomes an ordinary empty file")
    func a7ZipFifo() async throws {
        try await extractOK([.file("a.txt"), .special("fifo", "fifo")], as: .zip) { root, _ in
            #expect(FileFacts(root + "/fifo")?.isRegular == true)
            #expect(contents(root + "/fifo") == "")
        }
    }
}
