import Foundation
import Testing

@testable import Containers

/// The reader on hand-written log files, rotations done by hand the way the shim does them.
@Suite("Shim log reader and state files")
struct ShimLogReaderTests {
    /// A scratch state directory, removed by `remove()`.
    struct Scratch {
        let dir: String

        init() throws {
            dir = FileManager.default.temporaryDirectory.path + "/cf-like-shim-reader-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }

        var log: String { dir + "/log" }
        var rotated: String { dir + "/log.1" }

        func append(_ text: String, to path: String? = nil) throws {
            let path = path ?? log
            if !FileManager.default.fileExists(atPath: path) {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
            }
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        }

        /// What the shim does: `log` becomes `log.1`, a new `log` starts.
        func rotate() throws {
            #expect(rename(log, rotated) == 0)
            _ = FileManager.default.createFile(atPath: log, contents: nil)
        }

        func remove() {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    static func lines(_ range: ClosedRange<Int>) -> String {
        range.map { "\(1_700_000_000_000_000_000 + $0) O line-\($0)\n" }.joined()
    }

    static func texts(_ records: [ShimLogRecord]) -> [String] { records.map(\.text) }

    @Test("records parse with their streams; a line still being written waits")
    func parsesAndWaitsForCompleteLines() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.append("100 O hello world\n200 E  two  spaces \n300 S cf-like: note\n400 O \n500 O part")
        var reader = ShimLogReader(stateDir: scratch.dir)
        let first = try reader.read()
        #expect(first == [
            ShimLogRecord(timestampNanos: 100, stream: .out, text: "hello world"),
            ShimLogRecord(timestampNanos: 200, stream: .err, text: " two  spaces "),
            ShimLogRecord(timestampNanos: 300, stream: .system, text: "cf-like: note"),
            ShimLogRecord(timestampNanos: 400, stream: .out, text: ""),
        ])
        let offset = reader.position.offset
        #expect(offset == Int64("100 O hello world\n200 E  two  spaces \n300 S cf-like: note\n400 O \n".utf8.count))
        #expect(try reader.read().isEmpty)
        #expect(reader.position.offset == offset)
        try scratch.append("ial\n")
        #expect(try reader.read() == [ShimLogRecord(timestampNanos: 500, stream: .out, text: "partial")])
    }

    @Test("malformed lines are skipped, not returned and not stuck on")
    func skipsMalformedLines() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.append("garbage\n12 X bad stream\nx1 O bad time\n99999999999999999999 O overflow\n7 O good\n")
        var reader = ShimLogReader(stateDir: scratch.dir)
        #expect(try reader.read() == [ShimLogRecord(timestampNanos: 7, stream: .out, text: "good")])
    }

    @Test("maxRecords bounds a read and a saved position resumes exactly")
    func resumesFromSavedPosition() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.append(Self.lines(1...10))
        var reader = ShimLogReader(stateDir: scratch.dir)
        #expect(Self.texts(try reader.read(maxRecords: 4)) == (1...4).map { "line-\($0)" })
        #expect(try reader.read(maxRecords: 0).isEmpty)
        let saved = try JSONEncoder().encode(reader.position)
        var resumed = ShimLogReader(stateDir: scratch.dir, position: try JSONDecoder().decode(ShimLogPosition.self, from: saved))
        #expect(Self.texts(try resumed.read()) == (5...10).map { "line-\($0)" })
    }

    @Test("across a rotation the reader finishes log.1 from its offset, then starts log at 0")
    func followsRotation() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.append(Self.lines(1...5))
        var reader = ShimLogReader(stateDir: scratch.dir)
        #expect(Self.texts(try reader.read(maxRecords: 3)) == ["line-1", "line-2", "line-3"])
        let before = reader.position
        try scratch.rotate()
        try scratch.append(Self.lines(6...8))
        var resumed = ShimLogReader(stateDir: scratch.dir, position: before)
        #expect(Self.texts(try resumed.read(maxRecords: 1)) == ["line-4"])
        #expect(resumed.position.inode == before.inode)
        #expect(Self.texts(try resumed.read()) == (5...8).map { "line-\($0)" })
        #expect(resumed.position.inode != before.inode)
        // Mid-rotation (log renamed, new one not yet there) nothing is lost either.
        #expect(rename(scratch.log, scratch.rotated) == 0)
        #expect(try resumed.read().isEmpty)
        try scratch.append(Self.lines(9...9))
        #expect(Self.texts(try resumed.read()) == ["line-9"])
    }

    @Test("a fresh reader starts at the oldest file")
    func freshReaderReadsBothFiles() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.append(Self.lines(1...2))
        try scratch.rotate()
        try scratch.append(Self.lines(3...4))
        var reader = ShimLogReader(stateDir: scratch.dir)
        #expect(Self.texts(try reader.read()) == (1...4).map { "line-\($0)" })
        var empty = ShimLogReader(stateDir: scratch.dir + "/missing")
        #expect(try empty.read().isEmpty)
        #expect(empty.position == .beginning)
    }

    @Test("a reader whose file was rotated away reports the gap once and goes on with the oldest line left")
    func reportsGap() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.append(Self.lines(1...2))
        var reader = ShimLogReader(stateDir: scratch.dir)
        #expect(Self.texts(try reader.read(maxRecords: 1)) == ["line-1"])
        // Two rotations: the reader's file is gone. A file holds its inode number so the
        // removed one cannot be handed to the new files.
        let keeper = scratch.dir + "/keep"
        #expect(link(scratch.log, keeper) == 0)
        try scratch.rotate()
        try scratch.append(Self.lines(3...4))
        try scratch.rotate()
        try scratch.append(Self.lines(5...6))
        #expect(unlink(keeper) == 0)
        let records = try reader.read()
        #expect(records.first?.stream == .system)
        #expect(records.first?.text == ShimLogReader.gapText)
        #expect(Self.texts(Array(records.dropFirst())) == (3...6).map { "line-\($0)" })
        #expect(try reader.read().isEmpty)
    }

    @Test("a position past the end of its file (inode reused) starts that file over")
    func positionPastEnd() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.append(Self.lines(1...2))
        var reader = ShimLogReader(stateDir: scratch.dir)
        _ = try reader.read()
        var stale = ShimLogReader(
            stateDir: scratch.dir, position: ShimLogPosition(inode: reader.position.inode, offset: reader.position.offset + 1000))
        let records = try stale.read()
        #expect(records.first?.text == ShimLogReader.gapText)
        #expect(Self.texts(Array(records.dropFirst())) == ["line-1", "line-2"])
    }

    @Test("exit file lines parse; anything else is nil")
    func exitRecords() throws {
        let exited = try #require(ShimExitRecord(line: "exited 3 1700000000\n"))
        #expect(exited.exit == .exited(3))
        #expect(exited.exit.status == 3)
        #expect(exited.timestamp == Date(timeIntervalSince1970: 1_700_000_000))
        let signaled = try #require(ShimExitRecord(line: "signaled 9 1700000001"))
        #expect(signaled.exit == .signaled(9))
        #expect(signaled.exit.status == 137)
        for bad in ["", "exited", "exited 3", "stopped 3 1", "exited x 1", "exited -1 1", "exited 3 1 extra"] {
            #expect(ShimExitRecord(line: bad) == nil, "\(bad)")
        }

        let scratch = try Scratch()
        defer { scratch.remove() }
        #expect(ContainerShim.exit(stateDir: scratch.dir) == nil)
        #expect(!ContainerShim.shimAlive(stateDir: scratch.dir))
        try scratch.append("signaled 15 1700000002\n", to: scratch.dir + "/exit")
        #expect(ContainerShim.exit(stateDir: scratch.dir) == .signaled(15))
        // A pid file naming a live process that is not this directory's shim is not a shim.
        try scratch.append("\(getpid())\n", to: scratch.dir + "/shim.pid")
        #expect(!ContainerShim.shimAlive(stateDir: scratch.dir))
    }

    @Test("the shim refuses bad arguments with exit 64 and says why")
    func shimUsage() async throws {
        let shim = try #require(ContainerShim.locate(), "cf-like-shim must be built next to the test bundle")
        let cases: [([String], String)] = [
            ([], "--runc is required"),
            (["--runc", "/bin/true", "--id", "x", "--bundle", "/b", "--state-dir", "/s", "--bogus", "1"], "unknown argument --bogus"),
            (["--runc", "/bin/true", "--id", "-x", "--bundle", "/b", "--state-dir", "/s"], "invalid container id"),
            (["--runc", "/bin/true", "--id", "x", "--bundle", "/b"], "--state-dir is required"),
            (["--runc", "/bin/true", "--id", "x", "--bundle", "/b", "--state-dir", "/s", "--log-max-bytes", "100"], "--log-max-bytes must be"),
            (["--runc", "/bin/true", "--id", "x", "--bundle", "/b", "--state-dir", "/s", "--log-rate", "0"], "--log-rate must be"),
            (["--runc", "/no/such/runc", "--id", "x", "--bundle", "/b", "--state-dir", "/s"], "is not executable"),
            (["--runc", "/bin/true", "--id", "x", "--id", "y", "--bundle", "/b", "--state-dir", "/s"], "--id given twice"),
        ]
        for (arguments, message) in cases {
            let result = try await CommandRunner.run(shim, arguments, timeout: .seconds(60))
            #expect(result.status == 64, "\(arguments)")
            #expect(String(decoding: result.stderr, as: UTF8.self).contains(message), "\(arguments): \(String(decoding: result.stderr, as: UTF8.self))")
            #expect(result.stdout.isEmpty)
        }
    }

    @Test("the launcher checks its settings and names a missing shim")
    func launcherSettings() throws {
        let runc = try Runc(executable: "/bin/true", logger: .init(label: "test"))
        let missing = #expect(throws: ContainerError.self) {
            _ = try ContainerShim(executable: "/no/such/cf-like-shim", runc: runc, logger: .init(label: "test"))
        }
        #expect(missing?.kind == .launchFailed)
        #expect(missing?.message.contains("/no/such/cf-like-shim") == true)
        let small = #expect(throws: ContainerError.self) {
            _ = try ContainerShim(executable: "/bin/true", runc: runc, logMaxBytes: 1000, logger: .init(label: "test"))
        }
        #expect(small?.kind == .invalidArgument)
        // Found beside the running executable, with no PATH at all.
        let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        #expect(ContainerShim.locate(searchPath: "") == (own as NSString).deletingLastPathComponent + "/cf-like-shim")
    }
}
