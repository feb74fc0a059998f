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
    /// while their tasks finish exiting): each is retried for up to `patience`. A directory that
    /// still holds a container's cgroup (ENOTEMPTY) is left alone: that container is running.
    @discardableResult
    public func remove(patience: Duration = .seconds(2)) async -> [String] {
        let deadline = ContinuousClock.now + patience
        var left: [String] = []
        for directory in candidates {
            var result = rmdir(directory)
            while result != 0, errno == EBUSY, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
                result = rmdir(directory)
            }
            if result != 0, errno != ENOENT, errno != ENOTDIR { left.append(directory) }
        }
        return left
    }
}
