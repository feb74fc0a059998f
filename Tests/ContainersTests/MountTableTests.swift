import Foundation
import Testing

@testable import Containers

/// `/proc/self/mountinfo` is handed out one page per read: the table must hold every mount
/// even when the file is far larger than a page (a busy agent or stager host).
struct MountTableTests {
    @Test func everyMountIsSeenOnAHostWithManyMounts() throws {
        try #require(getuid() == 0, "mounting needs root")
        let base = "/tmp/cf-like-mount-table-\(UUID().uuidString.prefix(8))"
        let count = 60
        var mounted: [String] = []
        defer {
            for path in mounted.reversed() { umount2(path, Int32(MNT_DETACH)) }
            try? FileManager.default.removeItem(atPath: base)
        }
        for index in 0..<count {
            // Long paths make each mountinfo line long, so the file spans several pages.
            let path = base + "/" + String(repeating: "m", count: 120) + "-\(index)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try #require(mount("tmpfs", path, "tmpfs", 0, "size=64k") == 0, "mount tmpfs: errno \(errno)")
            mounted.append(path)
        }
        let raw = try MountTable.readProcFile("/proc/self/mountinfo")
        #expect(raw.utf8.count > 3 * 4096, "the test needs a mountinfo of several pages (\(raw.utf8.count) bytes)")
        for path in mounted {
            #expect(try MountTable.isMounted(path), "\(path) is mounted")
        }
        // Other tests mount and unmount in parallel: compare a parse with a read made right beside
        // it, a few times, rather than with the read above.
        var parsed = 0, lines = -1
        for _ in 0..<5 where parsed != lines {
            lines = try MountTable.readProcFile("/proc/self/mountinfo").split(separator: "\n").count
            parsed = try MountTable.current().count
        }
        #expect(parsed == lines)
    }
}
