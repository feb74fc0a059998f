/// Builds the locked-down spec every application container gets.
///
/// What it guarantees, whatever the caller passes: pid, mount, ipc, uts and network namespaces;
/// no capabilities in any set; `noNewPrivileges`; a seccomp deny-list (``SecureSpec/deniedSyscalls``)
/// answering EPERM; runc's masked and read-only paths; a device cgroup that denies everything
/// but the harmless character devices; memory limit with swap equal to it (no swap); a pids
/// limit; no terminal. The caller chooses only the process, the root filesystem, limits and
/// extra mounts.
public struct SecureSpec: Sendable {
    /// Where the container's network namespace comes from.
    public enum Network: Sendable, Equatable {
        /// runc creates an empty one (loopback only, and down).
        case new
        /// Join an existing namespace, e.g. `/var/run/netns/NAME` made by `ip netns add`.
        case path(String)
    }

    /// Cgroup and rlimit limits.
    public struct Limits: Sendable, Equatable {
        /// Memory limit in bytes; swap is set to the same value so the container gets no swap.
        public var memoryBytes: Int64
        /// cgroup v1 `cpu.shares` (relative CPU weight).
        public var cpuShares: UInt64
        /// Maximum number of tasks (processes plus threads).
        public var pids: Int64
        /// `RLIMIT_NOFILE`, soft and hard.
        public var nofile: UInt64

        /// Limits; the defaults suit a small app (256 MB, 256 shares, 1024 tasks, 16384 files).
        public init(memoryBytes: Int64 = 256 << 20, cpuShares: UInt64 = 256, pids: Int64 = 1024, nofile: UInt64 = 16384) {
            self.memoryBytes = memoryBytes
            self.cpuShares = cpuShares
            self.pids = pids
            self.nofile = nofile
        }
    }

    /// The argument vector; `args[0]` is an absolute path inside the container.
    public var args: [String]
    /// Environment as `KEY=value` strings.
    public var env: [String]
    /// Working directory inside the container.
    public var cwd: String
    /// The process's uid.
    public var uid: UInt32
    /// The process's gid.
    public var gid: UInt32
    /// Absolute host path of the prepared root filesystem (e.g. an overlay mount point).
    public var rootfsPath: String
    /// Whether the root filesystem is remounted read-only.
    public var readonlyRootfs: Bool
    /// The container's hostname.
    public var hostname: String
    /// Resource limits.
    public var limits: Limits
    /// Mounts appended after the standard ones (later mounts may cover earlier ones).
    public var extraMounts: [Mount]
    /// Network namespace.
    public var network: Network
    /// Cgroup path; absolute paths are used as is under every hierarchy. `nil` lets runc pick.
    public var cgroupsPath: String?
    /// Size of `/dev/shm` in bytes.
    public var shmBytes: Int64
    /// Whether the container sees its own cgroup read-only at `/sys/fs/cgroup`, so runtimes
    /// such as the JVM can size themselves to the memory limit.
    public var mountCgroup: Bool
    /// Annotations stored in config.json.
    public var annotations: [String: String]?

    /// A secure spec for `args`; every other part has a safe default.
    public init(
        args: [String],
        env: [String] = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
        cwd: String = "/",
        uid: UInt32 = 2000,
        gid: UInt32 = 2000,
        rootfsPath: String,
        readonlyRootfs: Bool = false,
        hostname: String,
        limits: Limits = Limits(),
        extraMounts: [Mount] = [],
        network: Network = .new,
        cgroupsPath: String? = nil,
        shmBytes: Int64 = 64 << 20,
        mountCgroup: Bool = true,
        annotations: [String: String]? = nil
    ) {
        self.args = args
        self.env = env
        self.cwd = cwd
        self.uid = uid
        self.gid = gid
        self.rootfsPath = rootfsPath
        self.readonlyRootfs = readonlyRootfs
        self.hostname = hostname
        self.limits = limits
        self.extraMounts = extraMounts
        self.network = network
        self.cgroupsPath = cgroupsPath
        self.shmBytes = shmBytes
        self.mountCgroup = mountCgroup
        self.annotations = annotations
    }

    /// The spec. Throws `.invalidArgument` for values runc would misread or that would weaken it.
    public func makeSpec() throws -> Spec {
        try validate()
        let process = Process(
            terminal: false,
            user: User(uid: uid, gid: gid),
            args: args,
            env: env,
            cwd: cwd,
            capabilities: .empty,
            rlimits: [POSIXRlimit(type: "RLIMIT_NOFILE", hard: limits.nofile, soft: limits.nofile)],
            noNewPrivileges: true,
            // The app, not the agent or another tenant, is the first choice of the OOM killer.
            oomScoreAdj: 500
        )
        var namespaces: [LinuxNamespace] = [
            LinuxNamespace(type: .pid), LinuxNamespace(type: .ipc),
            LinuxNamespace(type: .uts), LinuxNamespace(type: .mount),
        ]
        switch network {
        case .new: namespaces.append(LinuxNamespace(type: .network))
        case .path(let path): namespaces.append(LinuxNamespace(type: .network, path: path))
        }
        let resources = LinuxResources(
            devices: Self.deviceRules,
            memory: LinuxMemory(limit: limits.memoryBytes, swap: limits.memoryBytes),
            cpu: LinuxCPU(shares: limits.cpuShares),
            pids: LinuxPids(limit: limits.pids)
        )
        return Spec(
            process: process,
            root: Root(path: rootfsPath, readonly: readonlyRootfs),
            hostname: hostname,
            mounts: standardMounts() + extraMounts,
            annotations: annotations,
            linux: Linux(
                resources: resources,
                cgroupsPath: cgroupsPath,
                namespaces: namespaces,
                seccomp: Self.seccomp,
                rootfsPropagation: "rprivate",
                maskedPaths: Self.maskedPaths,
                readonlyPaths: Self.readonlyPaths
            )
        )
    }

    private func validate() throws {
        guard let program = args.first, program.hasPrefix("/") else {
            throw ContainerError(.invalidArgument, "args[0] must be an absolute path, got \(args.first ?? "nothing")")
        }
        // A cwd through /proc is how CVE-2024-21626 leaked a host fd into the container.
        guard cwd.hasPrefix("/"), !cwd.split(separator: "/").contains(".."), !cwd.hasPrefix("/proc") else {
            throw ContainerError(.invalidArgument, "cwd must be an absolute path outside /proc without '..': \(cwd)")
        }
        guard rootfsPath.hasPrefix("/") else {
            throw ContainerError(.invalidArgument, "rootfs path must be absolute: \(rootfsPath)")
        }
        guard limits.memoryBytes >= 4 << 20, limits.pids > 0, limits.cpuShares >= 2, limits.nofile > 0 else {
            throw ContainerError(.invalidArgument, "limits out of range: \(limits)")
        }
        for entry in env where !entry.contains("=") {
            throw ContainerError(.invalidArgument, "environment entry without '=': \(entry)")
        }
        for mount in extraMounts where !mount.destination.hasPrefix("/") {
            throw ContainerError(.invalidArgument, "mount destination must be absolute: \(mount.destination)")
        }
    }

    /// `/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys` (read-only) and optionally
    /// the container's own cgroup, as runc's default spec has them.
    func standardMounts() -> [Mount] {
        var mounts = [
            Mount(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount(destination: "/dev/pts", type: "devpts", source: "devpts",
                  options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            Mount(destination: "/dev/shm", type: "tmpfs", source: "shm",
                  options: ["nosuid", "noexec", "nodev", "mode=1777", "size=\(shmBytes)"]),
            Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
        ]
        if mountCgroup {
            mounts.append(Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
                                options: ["nosuid", "noexec", "nodev", "relatime", "ro"]))
        }
        return mounts
    }
}
