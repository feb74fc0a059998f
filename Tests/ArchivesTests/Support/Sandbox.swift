import Foundation
import Testing

/// A temp directory holding the archive, the extraction destination and a sentinel directory
/// next to it, so an escape (`../sentinel/pwned`, a link into it) is visible.
final class Sandbox {
    let base: String
    var destination: String { base + "/dest" }
    var sentinel: String { base + "/sentinel" }
    static let sentinelContent = "keep me"

    init() throws {
        let template = NSTemporaryDirectory() + "archives-test-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw FixtureError(message: "mkdtemp failed") }
        base = String(cString: made)
        try FileManager.default.createDirectory(atPath: base + "/sentinel", withIntermediateDirectories: false)
        try Sandbox.sentinelContent.write(toFile: base + "/sentinel/keep.txt", atomically: false, encoding: .utf8)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: base)
    }

    func path(_ name: String) -> String { base + "/" + name }

    /// The refused archive left nothing: destination absent or empty, sentinel as it was,
    /// and no `pwned` anywhere in the sandbox.
    func expectUntouched(sourceLocation: SourceLocation = #_sourceLocation) {
        let fm = FileManager.default
        if fm.fileExists(atPath: destination) {
            let left = (try? fm.contentsOfDirectory(atPath: destination)) ?? ["<unreadable>"]
            #expect(left.isEmpty, "destination not empty: \(left)", sourceLocation: sourceLocation)
        }
        let sentinelFiles = (try? fm.contentsOfDirectory(atPath: sentinel)) ?? []
        #expect(sentinelFiles == ["keep.txt"], "sentinel changed: \(sentinelFiles)", sourceLocation: sourceLocation)
        let kept = try? String(contentsOfFile: sentinel + "/keep.txt", encoding: .utf8)
        #expect(kept == Sandbox.sentinelContent, sourceLocation: sourceLocation)
        let everything = fm.enumerator(atPath: base)?.allObjects as? [String] ?? []
        let pwned = everything.filter { $0.contains("pwned") }
        #expect(pwned.isEmpty, "escaped entries: \(pwned)", sourceLocation: sourceLocation)
    }
}
