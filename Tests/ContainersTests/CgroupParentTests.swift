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

    @Test("root: a container's leaf left empty in a real hierarchy goes with the parent; one holding a process stays")
    func emptyLeavesGoWithTheParent() async throws {
        try #require(getuid() == 0, "needs root to make cgroups")
        let hierarchy = "/sys/fs/cgroup/pids"
        try #require(FileManager.default.fileExists(atPath: hierarchy + "/cgroup.procs"), "needs the cgroup v1 pids hierarchy")
        let id = "cflike-test-\(UUID().uuidString.prefix(8).lowercased())"
        let parent = CgroupParent("/cflike/\(id)")
        let base = "\(hierarchy)/cflike/\(id)"
        try FileManager.default.createDirectory(atPath: base + "/left-empty", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/busy", withIntermediateDirectories: true)
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["60"]
        try sleeper.run()
        defer { sleeper.terminate() }
        try Data("\(sleeper.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: base + "/busy/cgroup.procs"))

        let left = await parent.remove(patience: .milliseconds(200))
        #expect(!FileManager.default.fileExists(atPath: base + "/left-empty"), "the empty leaf goes")
        #expect(FileManager.default.fileExists(atPath: base + "/busy"), "a cgroup holding a process stays")
        #expect(left.contains(base))

        // Once its process is gone, the leaf and the parent go too.
        try Data("\(sleeper.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: hierarchy + "/cgroup.procs"))
        let after = await parent.remove(patience: .seconds(2))
        #expect(!after.contains(base))
        #expect(!FileManager.default.fileExists(atPath: base))
    }

    @Test("a parent that was never made is not an error")
    func nothingToRemove() async {
        let left = await CgroupParent("/cflike/never-made", root: NSTemporaryDirectory() + "no-such-root-\(UUID().uuidString)").remove()
        #expect(left.isEmpty)
    }
}
