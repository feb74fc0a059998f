import Foundation

/// The cgroup directory a component's containers live under (`/cflike/<agent or stager id>`).
///
/// runc makes the intermediate directories of a container's `cgroupsPath` on create and removes
/// only the container's own leaf on delete, so the parent outlives every container unless its
/// component removes it. It exists once per hierarchy: under each v1 controller
/// (`<root>/memory/cflike/<id>`, …), under the v2 tree of a hybrid host (`<root>/unified/…`) and
/// at the top of a pure v2 host (`<root>/cflike/<id>`).
public struct CgroupParent: Sendable {
    /// The path inside every hierarchy, e.g. `/cflike/stager-1`.
    public var path: String
    /// Where the hierarchies are mounted, `/sys/fs/cgroup` normally.
    public var root: String

    public init(_ path: String, root: String = "/sys/fs/cgroup") {
        self.path = path
        self.root = root
    }

    /// The directory in every hierarchy where it could be.
    public var candidates: [String] {
        let mounts = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return mounts.sorted().map { "\(root)/\($0)\(path)" } + ["\(root)\(path)"]
    }

    /// Removes the parent, now empty, from every hierarchy; returns the directories still there.
    ///
    /// Right after the last containers were deleted a hierarchy may refuse for a moment (EBUSY
    /// while their tasks finish exiting): each is retried for up to `patience`. A container's
    /// cgroup that holds no process any more is removed first (runc's own removal can meet the
    /// same refusal and give up, leaving the leaf in one hierarchy); one that still holds a
    /// process is left alone, and so is the parent above it: that container is running.
    @discardableResult
    public func remove(patience: Duration = .seconds(2)) async -> [String] {
        let deadline = ContinuousClock.now + patience
        var left: [String] = []
        for directory in candidates {
            for child in Self.emptyChildren(of: directory) {
                _ = await Self.rmdir(child, until: deadline)
            }
            if !(await Self.rmdir(directory, until: deadline)) { left.append(directory) }
        }
        return left
    }

    /// Whether `directory` is gone (or never was), retrying EBUSY until `deadline`.
    private static func rmdir(_ directory: String, until deadline: ContinuousClock.Instant) async -> Bool {
        var result = Foundation.rmdir(directory)
        while result != 0, errno == EBUSY, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            result = Foundation.rmdir(directory)
        }
        return result == 0 || errno == ENOENT || errno == ENOTDIR
    }

    /// The sub-cgroups of `directory` (one level: containers' leaves) whose `cgroup.procs` is empty.
    private static func emptyChildren(of directory: String) -> [String] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        return names.map { directory + "/" + $0 }.filter { child in
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: child, isDirectory: &isDirectory), isDirectory.boolValue,
                  let procs = Self.read(child + "/cgroup.procs")
            else { return false }
            return procs.allSatisfy { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: " ") }
        }
    }

    /// Reads a cgroup file through a handle (its size reads as 0).
    private static func read(_ path: String) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return try? handle.readToEnd() ?? Data()
    }
}
