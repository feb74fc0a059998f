import Archives
import Foundation
import Testing

/// TarGzWriter and ZipWriter: A14 and round trips through SafeExtractor.
@Suite("Archive creation (A14)")
struct WriterTests {
    @Test("A14: a symlink to / is stored as a symlink, never followed")
    func a14SymlinkToRoot() async throws {
        let sandbox = try Sandbox()
        let tree = sandbox.path("droplet")
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: tree + "/evil", withDestinationPath: "/")
        let output = sandbox.path("droplet.tgz")
        let counts = try TarGzWriter(logger: testLogger).write(directory: tree, to: output)
        #expect(counts == ArchiveCounts(symlinks: 1))
        let size = try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int ?? .max
        #expect(size < 1024, "archive is \(size) bytes")
        let rows = try await Fixtures.list(output)
        #expect(rows.map(\.name) == ["evil"])
        #expect(rows.first?.type == "symlink" && rows.first?.target == "/")

        // And the same archive is refused on the way back in.
        #expect(throws: ArchiveError.self) {
            try SafeExtractor(logger: testLogger).extract(archiveAt: output, into: sandbox.destination)
        }
    }

    @Test("A14: ZipWriter stores a symlink to / as a symlink")
    func a14Zip() async throws {
        let sandbox = try Sandbox()
        let tree = sandbox.path("app")
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: tree + "/evil", withDestinationPath: "/")
        let output = sandbox.path("app.zip")
        let counts = try ZipWriter(logger: testLogger).write(paths: ["evil"], relativeTo: tree, to: output)
        #expect(counts == ArchiveCounts(symlinks: 1))
        let size = try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int ?? .max
        #expect(size < 1024)
        let error = #expect(throws: ArchiveError.self) {
            try SafeExtractor(logger: testLogger).extract(archiveAt: output, into: sandbox.destination)
        }
        #expect(error?.kind == .unsafeLink && error?.entry == "evil")
    }

    @Test("A normal app tree round-trips byte-identically through TarGzWriter and SafeExtractor")
    func tarRoundTrip() async throws {
        let sandbox = try Sandbox()
        let tree = sandbox.path("app")
        let files = try AppTree.make(at: tree)
        let output = sandbox.path("droplet.tgz")
        let packed = try TarGzWriter(logger: testLogger).write(directory: tree, to: output)
        #expect(packed.skipped == 1)  // the FIFO
        #expect(packed.symlinks == 2)

        let extracted = try SafeExtractor(logger: testLogger).extract(archiveAt: output, into: sandbox.destination)
        #expect(extracted.files == packed.files)
        #expect(extracted.totalBytes == packed.totalBytes)
        try AppTree.expectSame(files, source: tree, copy: sandbox.destination)

        let rows = try await Fixtures.list(output)
        // Depth first, each directory's children in byte order; no FIFO.
        #expect(rows.map(\.name) == [
            "app", "app/.profile", "app/current", "app/empty", "app/empty.txt", "app/lib", "app/lib/deep",
            "app/lib/deep/er", "app/lib/deep/er/noise.bin", "app/lib/deep/er/up", "app/server-hardlink.js",
            "app/server.js", "app/start.sh", "app/ünïcödé", "app/ünïcödé/日本語.txt",
        ])
        #expect(rows.allSatisfy { $0.uid == 2000 && $0.gid == 2000 && $0.uname == "vcap" && $0.gname == "vcap" })
        #expect(rows.first(where: { $0.name == "app/server.js" })?.mtime == Int(AppTree.mtime.timeIntervalSince1970))
        #expect(rows.first(where: { $0.name == "app/server-hardlink.js" })?.type == "file")
    }

    @Test("TarGzWriter is deterministic: the same tree gives the same bytes")
    func deterministic() async throws {
        let sandbox = try Sandbox()
        let tree = sandbox.path("app")
        _ = try AppTree.make(at: tree)
        try TarGzWriter(logger: testLogger).write(directory: tree, to: sandbox.path("one.tgz"))
        try await Task.sleep(for: .milliseconds(1100))
        try TarGzWriter(logger: testLogger).write(directory: tree, to: sandbox.path("two.tgz"))
        let one = try Data(contentsOf: URL(fileURLWithPath: sandbox.path("one.tgz")))
        let two = try Data(contentsOf: URL(fileURLWithPath: sandbox.path("two.tgz")))
        #expect(one == two)
    }

    @Test("A normal app tree round-trips through ZipWriter and SafeExtractor")
    func zipRoundTrip() async throws {
        let sandbox = try Sandbox()
        let tree = sandbox.path("app")
        let files = try AppTree.make(at: tree, withSpecialFile: false)
        let paths = try FileManagerHelpers.tree(tree)
        let output = sandbox.path("app.zip")
        let packed = try ZipWriter(logger: testLogger).write(paths: paths, relativeTo: tree, to: output)
        #expect(packed.symlinks == 2)
        let extracted = try SafeExtractor(logger: testLogger).extract(archiveAt: output, into: sandbox.destination)
        #expect(extracted.files == packed.files)
        try AppTree.expectSame(files, source: tree, copy: sandbox.destination)
    }

    @Test("ZipWriter refuses paths that leave the root", arguments: ["../x", "/etc/passwd", "a/../../x"])
    func zipRefusesEscapes(path: String) async throws {
        let sandbox = try Sandbox()
        let error = #expect(throws: ArchiveError.self) {
            try ZipWriter(logger: testLogger).write(paths: [path], relativeTo: sandbox.sentinel, to: sandbox.path("x.zip"))
        }
        #expect(error?.entry == path)
        #expect(!FileManager.default.fileExists(atPath: sandbox.path("x.zip")))
    }
}

/// A small but varied app tree: nested dirs, empty dir and file, executable, 1 MB of noise,
/// UTF-8 names, inside symlinks, a hardlink, and a FIFO the writers must skip.
enum AppTree {
    static let mtime = Date(timeIntervalSince1970: 1_600_000_000)

    /// Creates the tree; returns the regular files' relative paths.
    static func make(at root: String, withSpecialFile: Bool = true) throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/app/lib/deep/er", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/app/empty", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/app/ünïcödé", withIntermediateDirectories: true)
        var noise = [UInt8](repeating: 0, count: 1 << 20)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in noise.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            noise[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        let files: [(String, Data, Int)] = [
            ("app/server.js", Data("console.log('hi')\n".utf8), 0o644),
            ("app/start.sh", Data("#!/bin/sh\nexec node server.js\n".utf8), 0o755),
            ("app/empty.txt", Data(), 0o644),
            ("app/lib/deep/er/noise.bin", Data(noise), 0o644),
            ("app/ünïcödé/日本語.txt", Data("こんにちは".utf8), 0o644),
            ("app/.profile", Data("export X=1\n".utf8), 0o644),
        ]
        for (path, data, mode) in files {
            try data.write(to: URL(fileURLWithPath: root + "/" + path))
            try fm.setAttributes([.posixPermissions: mode, .modificationDate: mtime], ofItemAtPath: root + "/" + path)
        }
        try fm.createSymbolicLink(atPath: root + "/app/current", withDestinationPath: "lib/deep")
        try fm.createSymbolicLink(atPath: root + "/app/lib/deep/er/up", withDestinationPath: "../../../server.js")
        try fm.linkItem(atPath: root + "/app/server.js", toPath: root + "/app/server-hardlink.js")
        if withSpecialFile {
            #expect(mkfifo(root + "/app/fifo", 0o644) == 0)
        }
        return files.map(\.0) + ["app/server-hardlink.js"]
    }

    static func expectSame(_ files: [String], source: String, copy: String) throws {
        for path in files {
            let a = try Data(contentsOf: URL(fileURLWithPath: source + "/" + path))
            let b = try Data(contentsOf: URL(fileURLWithPath: copy + "/" + path))
            #expect(a == b, "\(path) differs")
            #expect(FileFacts(source + "/" + path)?.mode == FileFacts(copy + "/" + path)?.mode, "\(path) mode")
            let sourceDate = try FileManager.default.attributesOfItem(atPath: source + "/" + path)[.modificationDate] as? Date
            let copyDate = try FileManager.default.attributesOfItem(atPath: copy + "/" + path)[.modificationDate] as? Date
            #expect(sourceDate.map { Int($0.timeIntervalSince1970) } == copyDate.map { Int($0.timeIntervalSince1970) }, "\(path) mtime")
        }
        #expect(readLink(copy + "/app/current") == "lib/deep")
        #expect(readLink(copy + "/app/lib/deep/er/up") == "../../../server.js")
        #expect(FileFacts(copy + "/app/empty")?.isDirectory == true)
        #expect(FileFacts(copy + "/app/fifo") == nil)
        let sourceTree = try FileManagerHelpers.tree(source).filter { $0 != "app/fifo" }
        #expect(try FileManagerHelpers.tree(copy) == sourceTree)
    }
}
