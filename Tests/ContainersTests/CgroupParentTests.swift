import Containers
import Foundation
import Testing

/// The parent cgroup a component's containers share, removed from every hierarchy (on a
/// directory tree shaped like a hybrid host's /sys/fs/cgroup; rmdir behaves the same there).
@Suite("Cgroup parent removal")
struct CgroupParentTests {
    @Test("every hierarchy's empty parent goes; one still holding a container stays and is reported")
    func removesEmptyParentsEverywhere() async throws {
        let root = NSTemporaryDirectory() + "cgroup-parent-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        for hierarchy in ["memory", "pids", "cpu,cpuacct", "unified"] {
            try fm.createDirectory(atPath: "\(root)/\(hierarchy)/cflike/stager-1", withIntermediateDirectories: true)
        }
        try fm.createDirectory(atPath: "\(root)/cflike/stager-1", withIntermediateDirectories: true)
        // Another component's parent and a running container's cgroup under this one.
        try fm.createDirectory(atPath: "\(root)/memory/cflike/stager-2", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/pids/cflike/stager-1/abc-compile", withIntermediateDirectories: true)

        let parent = CgroupParent("/cflike/stager-1", root: root)
        #expect(parent.candidates.contains("\(root)/memory/cflike/stager-1"))
        #expect(parent.candidates.contains("\(root)/cflike/stager-1"))
        let left = await parent.remove(patience: .milliseconds(100))

        #expect(left == ["\(root)/pids/cflike/stager-1"])
        for gone in ["memory", "cpu,cpuacct", "unified"] {
            #expect(!fm.fileExists(atPath: "\(root)/\(gone)/cflike/stager-1"), "\(gone) left")
        }
        #expect(!fm.fileExists(atPath: "\(root)/cflike/stager-1"))
        #expect(fm.fileExists(atPath: "\(root)/pids/cflike/stager-1/abc-compile"), "a container's cgroup is never removed")
        #expect(fm.fileExists(atPath: "\(root)/memory/cflike/stager-2"), "another component's parent stays")
        #expect(fm.fileExists(atPath: "\(root)/memory/cflike"), "the shared top stays")
    }

    @Test("a parent that was never made is not an error")
    func nothingToRemove() async {
        let left = await CgroupParent("/cflike/never-made", root: NSTemporaryDirectory() + "no-such-root-\(UUID().uuidString)").remove()
        #expect(left.isEmpty)
    }
}
