import Foundation

/// Reads a container's cgroup counters for reporting: memory use, OOM kills, task count.
///
/// Handles all three host layouts: cgroup v1 (one hierarchy per controller under
/// `/sys/fs/cgroup/<controller>`), hybrid (v1 controllers plus an empty v2 tree at
/// `/sys/fs/cgroup/unified`, as on this project's hosts) and pure v2 (one tree, `memory.events`).
public struct CgroupReader: Sendable {
    /// How the host mounts cgroups.
    public enum Layout: String, Sendable {
        /// v1 controllers only.
        case legacy
        /// v1 controllers plus a v2 tree at `<root>/unified` (controllers stay on v1).
        case hybrid
        /// One v2 tree at the root.
        case unified
    }

    /// Where the hierarchies are mounted, `/sys/fs/cgroup` normally.
    public var root: String

    /// A reader of the hierarchies under `root`.
    public init(root: String = "/sys/fs/cgroup") {
        self.root = root
    }

    /// This host's layout, told apart by the files the kernel puts at each mount's top.
    public func layout() -> Layout {
        let fm = FileManager.default
        if fm.fileExists(atPath: root + "/cgroup.controllers") { return .unified }
        if fm.fileExists(atPath: root + "/unified/cgroup.controllers") { return .hybrid }
        return .legacy
    }

    /// The cgroup paths of a live process from `/proc/<pid>/cgroup`, keyed by controller
    /// (v1, e.g. `memory`) with the v2 path under the key `""`.
    public func paths(ofPID pid: Int32) throws -> [String: String] {
        let file = "/proc/\(pid)/cgroup"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ContainerError(.notFound, "cannot read \(file) (process gone?)")
        }
        return Self.parseProcCgroup(text)
    }

    /// Parses `/proc/<pid>/cgroup` lines `id:controllers:path`.
    public static func parseProcCgroup(_ text: String) -> [String: String] {
        var paths: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[1].isEmpty {
                paths[""] = path
            } else {
                for controller in parts[1].split(separator: ",") {
                    paths[String(controller)] = path
                }
            }
        }
        return paths
    }

    /// Counters of a cgroup that has the same path in every hierarchy (runc's absolute
    /// `cgroupsPath`, e.g. `/cf-like/<id>`).
    public func stats(cgroupPath: String) throws -> CgroupStats {
        try stats(paths: ["memory": cgroupPath, "pids": cgroupPath, "cpuacct": cgroupPath, "": cgroupPath])
    }

    /// Counters of a live process's cgroups.
    public func stats(ofPID pid: Int32) throws -> CgroupStats {
        try stats(paths: paths(ofPID: pid))
    }

    /// Counters from per-controller paths as ``paths(ofPID:)`` returns them.
    public func stats(paths: [String: String]) throws -> CgroupStats {
        switch layout() {
        case .unified:
            guard let path = paths[""] else { throw ContainerError(.notFound, "no cgroup v2 path given") }
            let dir = root + path
            guard FileManager.default.fileExists(atPath: dir) else { throw ContainerError(.notFound, "no cgroup at \(dir)") }
            let events = Self.keyedValues(read(dir + "/memory.events"))
            return CgroupStats(
                memoryUsageBytes: Self.number(read(dir + "/memory.current")),
                memoryLimitBytes: Self.number(read(dir + "/memory.max")),
                memoryPeakBytes: Self.number(read(dir + "/memory.peak")),
                memoryFailCount: events["max"],
                oomKillCount: events["oom_kill"],
                pidsCurrent: Self.number(read(dir + "/pids.current")),
                pidsLimit: Self.number(read(dir + "/pids.max")),
                cpuUsageNanos: Self.keyedValues(read(dir + "/cpu.stat"))["usage_usec"].map { $0 * 1000 }
            )
        case .legacy, .hybrid:
            guard let memoryPath = paths["memory"] else { throw ContainerError(.notFound, "no memory cgroup path given") }
            let memory = root + "/memory" + memoryPath
            guard FileManager.default.fileExists(atPath: memory) else { throw ContainerError(.notFound, "no cgroup at \(memory)") }
            let pids = paths["pids"].map { root + "/pids" + $0 }
            let oomControl = Self.keyedValues(read(memory + "/memory.oom_control"))
            return CgroupStats(
                memoryUsageBytes: Self.number(read(memory + "/memory.usage_in_bytes")),
                memoryLimitBytes: Self.number(read(memory + "/memory.limit_in_bytes")),
                memoryPeakBytes: Self.number(read(memory + "/memory.max_usage_in_bytes")),
                // With swap limited to the memory limit the memory+swap counter is charged first,
                // so it is often the one that records the failure.
                memoryFailCount: [read(memory + "/memory.failcnt"), read(memory + "/memory.memsw.failcnt")]
                    .compactMap(Self.number).max(),
                oomKillCount: oomControl["oom_kill"],
                pidsCurrent: pids.flatMap { Self.number(read($0 + "/pids.current")) },
                pidsLimit: pids.flatMap { Self.number(read($0 + "/pids.max")) },
                cpuUsageNanos: (paths["cpuacct"] ?? paths["cpu,cpuacct"]).flatMap { path in
                    [root + "/cpuacct" + path, root + "/cpu,cpuacct" + path].lazy.compactMap { Self.number(self.read($0 + "/cpuacct.usage")) }.first
                }
            )
        }
    }

    /// Whether any directory for `cgroupPath` is left in the memory, pids or v2 hierarchy.
    public func exists(cgroupPath: String) -> Bool {
        let candidates: [String]
        switch layout() {
        case .unified: candidates = [root + cgroupPath]
        case .hybrid: candidates = ["memory", "pids", "cpu", "devices", "unified"].map { "\(root)/\($0)\(cgroupPath)" }
        case .legacy: candidates = ["memory", "pids", "cpu", "devices"].map { "\(root)/\($0)\(cgroupPath)" }
        }
        return candidates.contains { FileManager.default.fileExists(atPath: $0) }
    }

    private func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    /// A single number; `max` (v2's "unlimited") and garbage give nil.
    static func number(_ text: String?) -> UInt64? {
        text.flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// `key value` lines (memory.oom_control, memory.events).
    static func keyedValues(_ text: String?) -> [String: UInt64] {
        var values: [String: UInt64] = [:]
        for line in (text ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = UInt64(parts[1]) { values[String(parts[0])] = value }
        }
        return values
    }
}

/// A snapshot of a container's cgroup counters; nil where the host does not provide one.
public struct CgroupStats: Sendable, Equatable {
    /// Memory in use, page cache included.
    public var memoryUsageBytes: UInt64?
    /// The memory limit (nil when unlimited on v2).
    public var memoryLimitBytes: UInt64?
    /// Highest memory use seen (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    public var memoryPeakBytes: UInt64?
    /// Times the limit was hit (v1: the larger of `memory.failcnt` and `memory.memsw.failcnt`;
    /// v2: `memory.events` `max`). Kernel 6.18 on this project's hosts leaves the v1 counters
    /// at 0 even through an OOM kill, so judge OOM by ``oomKillCount``, never by this.
    public var memoryFailCount: UInt64?
    /// Processes the OOM killer killed in this cgroup (`oom_kill`).
    public var oomKillCount: UInt64?
    /// Tasks now in the cgroup.
    public var pidsCurrent: UInt64?
    /// The task limit (nil when unlimited).
    public var pidsLimit: UInt64?
    /// CPU time used by every task of the cgroup so far, in nanoseconds.
    public var cpuUsageNanos: UInt64?

    /// A snapshot.
    public init(
        memoryUsageBytes: UInt64? = nil, memoryLimitBytes: UInt64? = nil, memoryPeakBytes: UInt64? = nil, memoryFailCount: UInt64? = nil,
        oomKillCount: UInt64? = nil, pidsCurrent: UInt64? = nil, pidsLimit: UInt64? = nil, cpuUsageNanos: UInt64? = nil
    ) {
        self.cpuUsageNanos = cpuUsageNanos
        self.memoryUsageBytes = memoryUsageBytes
        self.memoryLimitBytes = memoryLimitBytes
        self.memoryPeakBytes = memoryPeakBytes
        self.memoryFailCount = memoryFailCount
        self.oomKillCount = oomKillCount
        self.pidsCurrent = pidsCurrent
        self.pidsLimit = pidsLimit
    }

    /// Whether the OOM killer has struck in this cgroup.
    public var wasOOMKilled: Bool { (oomKillCount ?? 0) > 0 }
}
