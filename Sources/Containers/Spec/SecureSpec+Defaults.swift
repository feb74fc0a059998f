// The fixed security parts of ``SecureSpec``: seccomp, device rules, masked and read-only paths.

extension SecureSpec {
    /// System calls that answer EPERM: mounting, namespace games, kernel keyrings, BPF, perf,
    /// tracing other processes, loading kernel code, rebooting, swap and accounting control,
    /// userfaultfd (a kernel-exploit helper) and file-handle opens that escape mount namespaces.
    public static let deniedSyscalls: [String] = [
        "mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns",
        "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "reboot", "swapon", "swapoff", "acct", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
        "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
        "lookup_dcookie", "quotactl", "nfsservctl", "iopl", "ioperm", "settimeofday", "clock_settime",
        "stime", "syslog", "vhangup",
    ]

    /// Namespace flags a `clone` may not carry (CLONE_NEWNS … CLONE_NEWCGROUP, CLONE_NEWTIME).
    /// Without this an unprivileged process could still make a user namespace through `clone`
    /// (unshare is denied above) and gain capabilities inside it.
    static let cloneNamespaceFlags: [UInt64] = [
        0x0002_0000, // CLONE_NEWNS
        0x0200_0000, // CLONE_NEWCGROUP
        0x0400_0000, // CLONE_NEWUTS
        0x0800_0000, // CLONE_NEWIPC
        0x1000_0000, // CLONE_NEWUSER
        0x2000_0000, // CLONE_NEWPID
        0x4000_0000, // CLONE_NEWNET
        0x0000_0080, // CLONE_NEWTIME
    ]

    /// errno values used in seccomp rules.
    static let eperm: UInt32 = 1
    static let enosys: UInt32 = 38

    /// Default allow with a deny-list, for x86_64 and both 32-bit ABIs on it (so a process cannot
    /// sidestep the filter by switching ABI).
    public static let seccomp: LinuxSeccomp = {
        var rules = [LinuxSyscall(names: deniedSyscalls, action: .errno, errnoRet: eperm)]
        for flag in cloneNamespaceFlags {
            rules.append(LinuxSyscall(
                names: ["clone"], action: .errno, errnoRet: eperm,
                args: [LinuxSeccompArg(index: 0, value: flag, valueTwo: flag, op: .maskedEqual)]))
        }
        // clone3 passes its flags in memory seccomp cannot read; ENOSYS makes libc fall back to
        // clone, whose flags the rules above do check (Docker's profile does the same).
        rules.append(LinuxSyscall(names: ["clone3"], action: .errno, errnoRet: enosys))
        return LinuxSeccomp(defaultAction: .allow, architectures: [.x86_64, .x86, .x32], syscalls: rules)
    }()

    /// Deny every device, then allow the character devices runc creates by default:
    /// null, zero, full, random, urandom, tty, ptmx and the devpts terminals.
    public static let deviceRules: [LinuxDeviceCgroup] = [
        LinuxDeviceCgroup(allow: false, access: "rwm"),
        LinuxDeviceCgroup(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),   // /dev/null
        LinuxDeviceCgroup(allow: true, type: "c", major: 1, minor: 5, access: "rwm"),   // /dev/zero
        LinuxDeviceCgroup(allow: true, type: "c", major: 1, minor: 7, access: "rwm"),   // /dev/full
        LinuxDeviceCgroup(allow: true, type: "c", major: 1, minor: 8, access: "rwm"),   // /dev/random
        LinuxDeviceCgroup(allow: true, type: "c", major: 1, minor: 9, access: "rwm"),   // /dev/urandom
        LinuxDeviceCgroup(allow: true, type: "c", major: 5, minor: 0, access: "rwm"),   // /dev/tty
        LinuxDeviceCgroup(allow: true, type: "c", major: 5, minor: 2, access: "rwm"),   // /dev/ptmx
        LinuxDeviceCgroup(allow: true, type: "c", major: 136, minor: nil, access: "rwm"), // /dev/pts/*
    ]

    /// runc's default masked paths plus powercap (energy counters leak other tenants' activity).
    public static let maskedPaths: [String] = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap",
    ]

    /// runc's default read-only paths.
    public static let readonlyPaths: [String] = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]
}
