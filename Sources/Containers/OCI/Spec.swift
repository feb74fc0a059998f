// OCI runtime-spec (config.json) types, as runc 1.1 reads them.
//
// Field names match the runtime-spec exactly (they are the synthesized coding keys, so a
// rename here would silently break runc). Optional fields are encoded only when set, because
// the synthesized `Encodable` uses `encodeIfPresent` for optionals; runc treats an absent field
// and its zero value differently in places (e.g. `linux.resources.memory.swap`).

/// The runtime-spec version this module writes.
public let ociRuntimeSpecVersion = "1.0.2"

/// The root of an OCI `config.json`.
public struct Spec: Codable, Sendable, Equatable {
    /// The runtime-spec version, `"1.0.2"` by default.
    public var ociVersion: String
    /// The container's first process.
    public var process: Process?
    /// The root filesystem.
    public var root: Root?
    /// The container's hostname (needs a UTS namespace).
    public var hostname: String?
    /// Mounts in addition to the root filesystem, in order.
    public var mounts: [Mount]?
    /// Lifecycle hooks.
    public var hooks: Hooks?
    /// Arbitrary metadata.
    public var annotations: [String: String]?
    /// Linux-specific configuration.
    public var linux: Linux?

    /// A spec with the given parts; `ociVersion` defaults to ``ociRuntimeSpecVersion``.
    public init(
        ociVersion: String = ociRuntimeSpecVersion,
        process: Process? = nil,
        root: Root? = nil,
        hostname: String? = nil,
        mounts: [Mount]? = nil,
        hooks: Hooks? = nil,
        annotations: [String: String]? = nil,
        linux: Linux? = nil
    ) {
        self.ociVersion = ociVersion
        self.process = process
        self.root = root
        self.hostname = hostname
        self.mounts = mounts
        self.hooks = hooks
        self.annotations = annotations
        self.linux = linux
    }
}

/// A process to run in the container (the first one, or one given to `runc exec --process`).
public struct Process: Codable, Sendable, Equatable {
    /// Whether to allocate a pseudo-terminal; this module always uses `false`.
    public var terminal: Bool?
    /// Terminal size, only meaningful with `terminal: true`.
    public var consoleSize: Box?
    /// The user the process runs as.
    public var user: User
    /// The argument vector; `args[0]` is the program.
    public var args: [String]?
    /// Environment as `KEY=value` strings.
    public var env: [String]?
    /// Working directory inside the container (absolute).
    public var cwd: String
    /// Capability sets; empty arrays mean none.
    public var capabilities: LinuxCapabilities?
    /// POSIX resource limits.
    public var rlimits: [POSIXRlimit]?
    /// Sets `PR_SET_NO_NEW_PRIVS`, so setuid binaries and file capabilities gain nothing.
    public var noNewPrivileges: Bool?
    /// AppArmor profile name.
    public var apparmorProfile: String?
    /// `/proc/self/oom_score_adj` of the process.
    public var oomScoreAdj: Int?
    /// SELinux label.
    public var selinuxLabel: String?

    /// A process description.
    public init(
        terminal: Bool? = false,
        consoleSize: Box? = nil,
        user: User,
        args: [String]?,
        env: [String]? = nil,
        cwd: String,
        capabilities: LinuxCapabilities? = nil,
        rlimits: [POSIXRlimit]? = nil,
        noNewPrivileges: Bool? = nil,
        apparmorProfile: String? = nil,
        oomScoreAdj: Int? = nil,
        selinuxLabel: String? = nil
    ) {
        self.terminal = terminal
        self.consoleSize = consoleSize
        self.user = user
        self.args = args
        self.env = env
        self.cwd = cwd
        self.capabilities = capabilities
        self.rlimits = rlimits
        self.noNewPrivileges = noNewPrivileges
        self.apparmorProfile = apparmorProfile
        self.oomScoreAdj = oomScoreAdj
        self.selinuxLabel = selinuxLabel
    }
}

/// A terminal size.
public struct Box: Codable, Sendable, Equatable {
    /// Rows.
    public var height: UInt
    /// Columns.
    public var width: UInt
    /// A size of `height` rows by `width` columns.
    public init(height: UInt, width: UInt) {
        self.height = height
        self.width = width
    }
}

/// The numeric identity of a process.
public struct User: Codable, Sendable, Equatable {
    /// User id.
    public var uid: UInt32
    /// Primary group id.
    public var gid: UInt32
    /// File mode creation mask.
    public var umask: UInt32?
    /// Supplementary group ids.
    public var additionalGids: [UInt32]?
    /// User name (informational on Linux).
    public var username: String?

    /// A user with the given ids.
    public init(uid: UInt32, gid: UInt32, umask: UInt32? = nil, additionalGids: [UInt32]? = nil, username: String? = nil) {
        self.uid = uid
        self.gid = gid
        self.umask = umask
        self.additionalGids = additionalGids
        self.username = username
    }
}

/// The container's root filesystem.
public struct Root: Codable, Sendable, Equatable {
    /// Path to the root filesystem, absolute or relative to the bundle.
    public var path: String
    /// Whether runc remounts the root read-only.
    public var readonly: Bool?

    /// A root at `path`.
    public init(path: String, readonly: Bool? = nil) {
        self.path = path
        self.readonly = readonly
    }
}

/// One mount inside the container.
public struct Mount: Codable, Sendable, Equatable {
    /// Absolute path inside the container.
    public var destination: String
    /// Filesystem type (`proc`, `tmpfs`, `bind`, ...).
    public var type: String?
    /// Device, filesystem name or host path for binds.
    public var source: String?
    /// Mount options as in mount(8) (`ro`, `rbind`, `nosuid`, `size=64k`, ...).
    public var options: [String]?

    /// A mount description.
    public init(destination: String, type: String? = nil, source: String? = nil, options: [String]? = nil) {
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options
    }
}

/// Lifecycle hooks, each a list run in order.
public struct Hooks: Codable, Sendable, Equatable {
    /// Deprecated in the spec but still honoured by runc.
    public var prestart: [Hook]?
    /// Run in the runtime namespace after the environment is created.
    public var createRuntime: [Hook]?
    /// Run in the container namespace after the environment is created.
    public var createContainer: [Hook]?
    /// Run in the container before the user process starts.
    public var startContainer: [Hook]?
    /// Run after the user process starts.
    public var poststart: [Hook]?
    /// Run after the container is deleted.
    public var poststop: [Hook]?

    /// Empty hooks.
    public init(
        prestart: [Hook]? = nil, createRuntime: [Hook]? = nil, createContainer: [Hook]? = nil,
        startContainer: [Hook]? = nil, poststart: [Hook]? = nil, poststop: [Hook]? = nil
    ) {
        self.prestart = prestart
        self.createRuntime = createRuntime
        self.createContainer = createContainer
        self.startContainer = startContainer
        self.poststart = poststart
        self.poststop = poststop
    }
}

/// One hook program.
public struct Hook: Codable, Sendable, Equatable {
    /// Absolute path of the program.
    public var path: String
    /// Argument vector including `argv[0]`.
    public var args: [String]?
    /// Environment as `KEY=value` strings.
    public var env: [String]?
    /// Seconds before the hook is aborted.
    public var timeout: Int?

    /// A hook running `path`.
    public init(path: String, args: [String]? = nil, env: [String]? = nil, timeout: Int? = nil) {
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout
    }
}

/// Linux-specific configuration.
public struct Linux: Codable, Sendable, Equatable {
    /// User-namespace uid mappings.
    public var uidMappings: [LinuxIDMapping]?
    /// User-namespace gid mappings.
    public var gidMappings: [LinuxIDMapping]?
    /// Kernel parameters set in the container's namespaces.
    public var sysctl: [String: String]?
    /// Cgroup limits.
    public var resources: LinuxResources?
    /// Cgroup path, absolute from the cgroup root, or relative to runc's own cgroup.
    public var cgroupsPath: String?
    /// Namespaces to create or join.
    public var namespaces: [LinuxNamespace]?
    /// Device nodes to create in `/dev`.
    public var devices: [LinuxDevice]?
    /// The seccomp filter.
    public var seccomp: LinuxSeccomp?
    /// Propagation of the root mount (`private`, `rprivate`, `slave`, ...).
    public var rootfsPropagation: String?
    /// Paths over which runc mounts an empty, unreadable node.
    public var maskedPaths: [String]?
    /// Paths runc remounts read-only.
    public var readonlyPaths: [String]?
    /// SELinux mount label.
    public var mountLabel: String?

    /// Linux configuration.
    public init(
        uidMappings: [LinuxIDMapping]? = nil,
        gidMappings: [LinuxIDMapping]? = nil,
        sysctl: [String: String]? = nil,
        resources: LinuxResources? = nil,
        cgroupsPath: String? = nil,
        namespaces: [LinuxNamespace]? = nil,
        devices: [LinuxDevice]? = nil,
        seccomp: LinuxSeccomp? = nil,
        rootfsPropagation: String? = nil,
        maskedPaths: [String]? = nil,
        readonlyPaths: [String]? = nil,
        mountLabel: String? = nil
    ) {
        self.uidMappings = uidMappings
        self.gidMappings = gidMappings
        self.sysctl = sysctl
        self.resources = resources
        self.cgroupsPath = cgroupsPath
        self.namespaces = namespaces
        self.devices = devices
        self.seccomp = seccomp
        self.rootfsPropagation = rootfsPropagation
        self.maskedPaths = maskedPaths
        self.readonlyPaths = readonlyPaths
        self.mountLabel = mountLabel
    }
}

/// A user-namespace id mapping.
public struct LinuxIDMapping: Codable, Sendable, Equatable {
    /// First id inside the container.
    public var containerID: UInt32
    /// First id on the host.
    public var hostID: UInt32
    /// Number of ids mapped.
    public var size: UInt32

    /// A mapping of `size` ids.
    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID
        self.hostID = hostID
        self.size = size
    }
}

/// A Linux namespace kind as the runtime-spec names it.
public enum LinuxNamespaceType: String, Codable, Sendable, CaseIterable {
    case pid, network, mount, ipc, uts, user, cgroup
}

/// A namespace to create (no `path`) or join (`path` to e.g. `/var/run/netns/NAME`).
public struct LinuxNamespace: Codable, Sendable, Equatable {
    /// The kind of namespace.
    public var type: LinuxNamespaceType
    /// An existing namespace to join instead of creating one.
    public var path: String?

    /// A namespace of `type`, joined at `path` when given.
    public init(type: LinuxNamespaceType, path: String? = nil) {
        self.type = type
        self.path = path
    }
}

/// A device node runc creates in the container's `/dev`.
public struct LinuxDevice: Codable, Sendable, Equatable {
    /// Path inside the container.
    public var path: String
    /// `c`, `b`, `u` or `p`.
    public var type: String
    /// Major number.
    public var major: Int64
    /// Minor number.
    public var minor: Int64
    /// Permission bits.
    public var fileMode: UInt32?
    /// Owner uid.
    public var uid: UInt32?
    /// Owner gid.
    public var gid: UInt32?

    /// A device node.
    public init(path: String, type: String, major: Int64, minor: Int64, fileMode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil) {
        self.path = path
        self.type = type
        self.major = major
        self.minor = minor
        self.fileMode = fileMode
        self.uid = uid
        self.gid = gid
    }
}

/// Cgroup limits.
public struct LinuxResources: Codable, Sendable, Equatable {
    /// Device cgroup rules, applied in order (later rules win).
    public var devices: [LinuxDeviceCgroup]?
    /// Memory limits.
    public var memory: LinuxMemory?
    /// CPU weight and quota.
    public var cpu: LinuxCPU?
    /// Process-count limit.
    public var pids: LinuxPids?

    /// Resource limits.
    public init(devices: [LinuxDeviceCgroup]? = nil, memory: LinuxMemory? = nil, cpu: LinuxCPU? = nil, pids: LinuxPids? = nil) {
        self.devices = devices
        self.memory = memory
        self.cpu = cpu
        self.pids = pids
    }
}

/// One device cgroup rule.
public struct LinuxDeviceCgroup: Codable, Sendable, Equatable {
    /// Allow (true) or deny (false).
    public var allow: Bool
    /// `a` (all), `c` or `b`; absent means all.
    public var type: String?
    /// Major number; absent means any.
    public var major: Int64?
    /// Minor number; absent means any.
    public var minor: Int64?
    /// Any of `r`, `w`, `m`.
    public var access: String?

    /// A device rule.
    public init(allow: Bool, type: String? = nil, major: Int64? = nil, minor: Int64? = nil, access: String? = nil) {
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access
    }
}

/// Memory cgroup limits, in bytes.
public struct LinuxMemory: Codable, Sendable, Equatable {
    /// Hard limit.
    public var limit: Int64?
    /// Soft limit.
    public var reservation: Int64?
    /// Memory plus swap limit; equal to `limit` means no swap.
    public var swap: Int64?
    /// Kernel memory limit (deprecated).
    public var kernel: Int64?
    /// Kernel TCP buffer limit.
    public var kernelTCP: Int64?
    /// Swappiness, 0–100.
    public var swappiness: UInt64?
    /// Disables the OOM killer (processes hang instead).
    public var disableOOMKiller: Bool?
    /// Hierarchical accounting (cgroup v1).
    public var useHierarchy: Bool?

    /// Memory limits.
    public init(
        limit: Int64? = nil, reservation: Int64? = nil, swap: Int64? = nil, kernel: Int64? = nil,
        kernelTCP: Int64? = nil, swappiness: UInt64? = nil, disableOOMKiller: Bool? = nil, useHierarchy: Bool? = nil
    ) {
        self.limit = limit
        self.reservation = reservation
        self.swap = swap
        self.kernel = kernel
        self.kernelTCP = kernelTCP
        self.swappiness = swappiness
        self.disableOOMKiller = disableOOMKiller
        self.useHierarchy = useHierarchy
    }
}

/// CPU cgroup settings.
public struct LinuxCPU: Codable, Sendable, Equatable {
    /// Relative weight (cgroup v1 `cpu.shares`, 2–262144).
    public var shares: UInt64?
    /// Microseconds of CPU per `period`.
    public var quota: Int64?
    /// Period in microseconds for `quota`.
    public var period: UInt64?
    /// Real-time runtime in microseconds.
    public var realtimeRuntime: Int64?
    /// Real-time period in microseconds.
    public var realtimePeriod: UInt64?
    /// CPUs allowed (cpuset syntax).
    public var cpus: String?
    /// Memory nodes allowed (cpuset syntax).
    public var mems: String?

    /// CPU settings.
    public init(
        shares: UInt64? = nil, quota: Int64? = nil, period: UInt64? = nil, realtimeRuntime: Int64? = nil,
        realtimePeriod: UInt64? = nil, cpus: String? = nil, mems: String? = nil
    ) {
        self.shares = shares
        self.quota = quota
        self.period = period
        self.realtimeRuntime = realtimeRuntime
        self.realtimePeriod = realtimePeriod
        self.cpus = cpus
        self.mems = mems
    }
}

/// Process-count limit.
public struct LinuxPids: Codable, Sendable, Equatable {
    /// Maximum number of tasks (processes and threads); -1 is unlimited.
    public var limit: Int64

    /// A pids limit.
    public init(limit: Int64) {
        self.limit = limit
    }
}

/// A seccomp filter.
public struct LinuxSeccomp: Codable, Sendable, Equatable {
    /// What to do with system calls no rule matches.
    public var defaultAction: LinuxSeccompAction
    /// errno for a `SCMP_ACT_ERRNO` default action.
    public var defaultErrnoRet: UInt32?
    /// Architectures the filter applies to.
    public var architectures: [LinuxSeccompArch]?
    /// Filter flags (`SECCOMP_FILTER_FLAG_LOG`, ...).
    public var flags: [String]?
    /// Rules.
    public var syscalls: [LinuxSyscall]?

    /// A seccomp filter.
    public init(
        defaultAction: LinuxSeccompAction, defaultErrnoRet: UInt32? = nil, architectures: [LinuxSeccompArch]? = nil,
        flags: [String]? = nil, syscalls: [LinuxSyscall]? = nil
    ) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.architectures = architectures
        self.flags = flags
        self.syscalls = syscalls
    }
}

/// A seccomp action.
public enum LinuxSeccompAction: String, Codable, Sendable, CaseIterable {
    case kill = "SCMP_ACT_KILL"
    case killProcess = "SCMP_ACT_KILL_PROCESS"
    case killThread = "SCMP_ACT_KILL_THREAD"
    case trap = "SCMP_ACT_TRAP"
    case errno = "SCMP_ACT_ERRNO"
    case trace = "SCMP_ACT_TRACE"
    case allow = "SCMP_ACT_ALLOW"
    case log = "SCMP_ACT_LOG"
    case notify = "SCMP_ACT_NOTIFY"
}

/// A seccomp architecture.
public enum LinuxSeccompArch: String, Codable, Sendable, CaseIterable {
    case x86 = "SCMP_ARCH_X86"
    case x86_64 = "SCMP_ARCH_X86_64"
    case x32 = "SCMP_ARCH_X32"
    case arm = "SCMP_ARCH_ARM"
    case aarch64 = "SCMP_ARCH_AARCH64"
    case mips = "SCMP_ARCH_MIPS"
    case mips64 = "SCMP_ARCH_MIPS64"
    case mips64n32 = "SCMP_ARCH_MIPS64N32"
    case mipsel = "SCMP_ARCH_MIPSEL"
    case mipsel64 = "SCMP_ARCH_MIPSEL64"
    case mipsel64n32 = "SCMP_ARCH_MIPSEL64N32"
    case ppc = "SCMP_ARCH_PPC"
    case ppc64 = "SCMP_ARCH_PPC64"
    case ppc64le = "SCMP_ARCH_PPC64LE"
    case s390 = "SCMP_ARCH_S390"
    case s390x = "SCMP_ARCH_S390X"
    case riscv64 = "SCMP_ARCH_RISCV64"
}

/// A seccomp rule for a set of system calls.
public struct LinuxSyscall: Codable, Sendable, Equatable {
    /// System call names.
    public var names: [String]
    /// What to do when the rule matches.
    public var action: LinuxSeccompAction
    /// errno returned for `SCMP_ACT_ERRNO`.
    public var errnoRet: UInt32?
    /// Argument conditions, all of which must hold.
    public var args: [LinuxSeccompArg]?

    /// A rule.
    public init(names: [String], action: LinuxSeccompAction, errnoRet: UInt32? = nil, args: [LinuxSeccompArg]? = nil) {
        self.names = names
        self.action = action
        self.errnoRet = errnoRet
        self.args = args
    }
}

/// A seccomp argument condition.
public struct LinuxSeccompArg: Codable, Sendable, Equatable {
    /// Argument index.
    public var index: UInt
    /// Compared value (the mask for `SCMP_CMP_MASKED_EQ`).
    public var value: UInt64
    /// Second value (the expected masked value for `SCMP_CMP_MASKED_EQ`).
    public var valueTwo: UInt64?
    /// Comparison operator.
    public var op: LinuxSeccompOperator

    /// An argument condition.
    public init(index: UInt, value: UInt64, valueTwo: UInt64? = nil, op: LinuxSeccompOperator) {
        self.index = index
        self.value = value
        self.valueTwo = valueTwo
        self.op = op
    }
}

/// A seccomp comparison operator.
public enum LinuxSeccompOperator: String, Codable, Sendable, CaseIterable {
    case notEqual = "SCMP_CMP_NE"
    case lessThan = "SCMP_CMP_LT"
    case lessOrEqual = "SCMP_CMP_LE"
    case equalTo = "SCMP_CMP_EQ"
    case greaterOrEqual = "SCMP_CMP_GE"
    case greaterThan = "SCMP_CMP_GT"
    case maskedEqual = "SCMP_CMP_MASKED_EQ"
}

/// Capability sets of a process; names like `CAP_KILL`.
public struct LinuxCapabilities: Codable, Sendable, Equatable {
    /// Bounding set.
    public var bounding: [String]?
    /// Effective set.
    public var effective: [String]?
    /// Inheritable set.
    public var inheritable: [String]?
    /// Permitted set.
    public var permitted: [String]?
    /// Ambient set.
    public var ambient: [String]?

    /// Capability sets.
    public init(bounding: [String]? = nil, effective: [String]? = nil, inheritable: [String]? = nil, permitted: [String]? = nil, ambient: [String]? = nil) {
        self.bounding = bounding
        self.effective = effective
        self.inheritable = inheritable
        self.permitted = permitted
        self.ambient = ambient
    }

    /// Every set present and empty: the process holds no capability at all.
    public static let empty = LinuxCapabilities(bounding: [], effective: [], inheritable: [], permitted: [], ambient: [])
}

/// A POSIX resource limit (`RLIMIT_NOFILE`, ...).
public struct POSIXRlimit: Codable, Sendable, Equatable {
    /// The limit's name, e.g. `RLIMIT_NOFILE`.
    public var type: String
    /// Hard limit.
    public var hard: UInt64
    /// Soft limit.
    public var soft: UInt64

    /// A resource limit.
    public init(type: String, hard: UInt64, soft: UInt64) {
        self.type = type
        self.hard = hard
        self.soft = soft
    }
}
