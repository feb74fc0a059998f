import Archives
import Foundation
import Logging
import Testing

let testLogger = Logger(label: "ArchivesTests")

/// Crafts `entries` (built with the sandbox's paths), extracts, and expects a refusal of `kind`
/// naming `entry`, with nothing written anywhere.
@discardableResult
func expectRefused(
    _ entries: (Sandbox) -> [Entry],
    as container: Container,
    kind: ArchiveError.Kind,
    entry: String?,
    messageContains: String? = nil,
    limits: SafeExtractor.Limits = .default,
    options: SafeExtractor.Options = .init(),
    pax: Bool = false,
    patchDeclaredSize: Int? = nil,
    extractWithin: Duration? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> ArchiveError? {
    let sandbox = try Sandbox()
    let archive = sandbox.path(container.fileName)
    try await Fixtures.build(entries(sandbox), as: container, at: archive, pax: pax, patchDeclaredSize: patchDeclaredSize)
    let extractor = SafeExtractor(limits: limits, options: options, logger: testLogger)
    var caught: ArchiveError?
    let start = ContinuousClock.now
    defer {
        if let extractWithin {
            let took = ContinuousClock.now - start
            #expect(took < extractWithin, "extraction took \(took)", sourceLocation: sourceLocation)
        }
    }
    do {
        let counts = try extractor.extract(archiveAt: archive, into: sandbox.destination)
        Issue.record("expected a refusal, extracted \(counts)", sourceLocation: sourceLocation)
    } catch let error as ArchiveError {
        caught = error
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        if let entry {
            #expect(error.entry == entry, "\(error)", sourceLocation: sourceLocation)
            let shown = entry.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\u{01}", with: "\\u{1}")
            #expect(error.description.contains(shown),
                    "message does not name the entry: \(error)", sourceLocation: sourceLocation)
        }
        if let messageContains {
            #expect(error.message.contains(messageContains), "\(error)", sourceLocation: sourceLocation)
        }
    }
    sandbox.expectUntouched(sourceLocation: sourceLocation)
    return caught
}

/// Crafts and extracts `entries`, expecting success; runs `check` on the destination.
func extractOK(
    _ entries: [Entry],
    as container: Container,
    options: SafeExtractor.Options = .init(),
    sourceLocation: SourceLocation = #_sourceLocation,
    check: (String, ArchiveCounts) throws -> Void
) async throws {
    let sandbox = try Sandbox()
    let archive = sandbox.path(container.fileName)
    try await Fixtures.build(entries, as: container, at: archive)
    let counts = try SafeExtractor(options: options, logger: testLogger)
        .extract(archiveAt: archive, into: sandbox.destination)
    try check(sandbox.destination, counts)
}

/// lstat-based facts about a path.
struct FileFacts {
    var mode: Int
    var type: Int
    var uid: UInt32
    var gid: UInt32
    var inode: UInt64

    init?(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        mode = Int(st.st_mode & 0o7777)
        type = Int(st.st_mode & S_IFMT)
        uid = st.st_uid
        gid = st.st_gid
        inode = UInt64(st.st_ino)
    }

    var isSymlink: Bool { type == Int(S_IFLNK) }
    var isDirectory: Bool { type == Int(S_IFDIR) }
    var isRegular: Bool { type == Int(S_IFREG) }
}

func readLink(_ path: String) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: path)
}

func contents(_ path: String) -> String? {
    try? String(contentsOfFile: path, encoding: .utf8)
}
