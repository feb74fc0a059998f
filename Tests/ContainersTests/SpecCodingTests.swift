import Foundation
import Testing

@testable import Containers

@Suite("OCI spec coding")
struct SpecCodingTests {
    /// A trimmed config.json as `runc spec` writes it, plus fields SecureSpec uses.
    static let runcJSON = """
        {
          "ociVersion": "1.0.2",
          "process": {
            "terminal": false,
            "user": { "uid": 2000, "gid": 2000, "additionalGids": [5] },
            "args": ["/bin/bash", "-c", "true"],
            "env": ["PATH=/usr/bin:/bin"],
            "cwd": "/home/vcap/app",
            "capabilities": { "bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": [] },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
            "oomScoreAdj": 500
          },
          "root": { "path": "rootfs", "readonly": true },
          "hostname": "runc",
          "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"] }
          ],
          "linux": {
            "cgroupsPath": "/cf-like/x",
            "resources": {
              "devices": [{ "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 136, "access": "rwm" }],
              "memory": { "limit": 33554432, "swap": 33554432 },
              "cpu": { "shares": 128 },
              "pids": { "limit": 64 }
            },
            "namespaces": [{ "type": "pid" }, { "type": "network", "path": "/var/run/netns/x" }],
            "seccomp": {
              "defaultAction": "SCMP_ACT_ALLOW",
              "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [
                { "names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
                { "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                  "args": [{ "index": 0, "value": 268435456, "valueTwo": 268435456, "op": "SCMP_CMP_MASKED_EQ" }] }
              ]
            },
            "rootfsPropagation": "rprivate",
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
          }
        }
        """

    @Test func decodesRuncFieldNames() throws {
        let spec = try JSONDecoder().decode(Spec.self, from: Data(Self.runcJSON.utf8))
        #expect(spec.ociVersion == "1.0.2")
        #expect(spec.process?.user.additionalGids == [5])
        #expect(spec.process?.noNewPrivileges == true)
        #expect(spec.process?.capabilities == .empty)
        #expect(spec.process?.rlimits?.first?.type == "RLIMIT_NOFILE")
        #expect(spec.root?.readonly == true)
        #expect(spec.linux?.cgroupsPath == "/cf-like/x")
        #expect(spec.linux?.resources?.memory?.swap == 33_554_432)
        #expect(spec.linux?.resources?.pids?.limit == 64)
        #expect(spec.linux?.resources?.devices?[1].major == 136)
        #expect(spec.linux?.resources?.devices?[1].minor == nil)
        #expect(spec.linux?.namespaces?[1] == LinuxNamespace(type: .network, path: "/var/run/netns/x"))
        #expect(spec.linux?.seccomp?.syscalls?[1].args?.first?.op == .maskedEqual)
        #expect(spec.linux?.seccomp?.syscalls?[1].args?.first?.valueTwo == 0x1000_0000)
        #expect(spec.linux?.maskedPaths == ["/proc/kcore"])
    }

    @Test func roundTripsAndKeepsKeys() throws {
        let spec = try JSONDecoder().decode(Spec.self, from: Data(Self.runcJSON.utf8))
        let encoded = try OCIBundle.encode(spec)
        #expect(try JSONDecoder().decode(Spec.self, from: encoded) == spec)
        // Compare as generic JSON: every key and value of the literal survives, nothing is added.
        let original = try JSONSerialization.jsonObject(with: Data(Self.runcJSON.utf8)) as? NSDictionary
        let again = try JSONSerialization.jsonObject(with: encoded) as? NSDictionary
        #expect(original == again)
    }

    @Test func unsetOptionalsAreNotEncoded() throws {
        let spec = Spec(process: Containers.Process(user: User(uid: 1, gid: 1), args: ["/x"], cwd: "/"))
        let text = String(decoding: try OCIBundle.encode(spec), as: UTF8.self)
        for absent in ["hooks", "linux", "mounts", "hostname", "annotations", "capabilities", "rlimits", "umask"] {
            #expect(!text.contains("\"\(absent)\""), "\(absent) should be absent")
        }
        #expect(text.contains("\"terminal\" : false"))
    }

    @Test func bundleCreateLoadRemove() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/cf-like-bundle-\(UUID().uuidString)"
        let spec = Spec(process: Containers.Process(user: User(uid: 1, gid: 1), args: ["/x"], cwd: "/"), root: Root(path: "rootfs"))
        let bundle = try OCIBundle.create(at: dir, spec: spec)
        #expect(bundle.rootfsPath == dir + "/rootfs")
        #expect(try OCIBundle.load(from: dir).spec == spec)
        try bundle.remove()
        #expect(!FileManager.default.fileExists(atPath: dir))
        #expect(throws: ContainerError.self) { try OCIBundle.load(from: dir) }
    }
}

@Suite("Secure spec builder")
struct SecureSpecTests {
    func build(_ change: (inout SecureSpec) -> Void = { _ in }) throws -> Spec {
        var secure = SecureSpec(args: ["/bin/bash", "-c", "true"], rootfsPath: "/tmp/rootfs", hostname: "app-0")
        change(&secure)
        return try secure.makeSpec()
    }

    @Test func seccompDeniesTheRequiredSyscalls() throws {
        let seccomp = try #require(try build().linux?.seccomp)
        #expect(seccomp.defaultAction == .allow)
        #expect(Set(seccomp.architectures ?? []) == [.x86_64, .x86, .x32])
        let denied = Set((seccomp.syscalls ?? []).filter { $0.action == .errno && $0.errnoRet == 1 && $0.args == nil }.flatMap(\.names))
        let required = [
            "mount", "umount2", "pivot_root", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
            "perf_event_open", "ptrace", "init_module", "finit_module", "delete_module", "kexec_load", "reboot",
            "swapon", "swapoff", "acct", "userfaultfd", "open_by_handle_at", "process_vm_readv", "process_vm_writev",
        ]
        for name in required {
            #expect(denied.contains(name), "\(name) must be denied")
        }
        let cloneRules = (seccomp.syscalls ?? []).filter { $0.names == ["clone"] }
        #expect(cloneRules.contains { $0.args?.first?.value == 0x1000_0000 }, "clone(CLONE_NEWUSER) must be denied")
    }

    @Test func noCapabilitiesAndNoNewPrivileges() throws {
        let spec = try build()
        let process = try #require(spec.process)
        #expect(process.capabilities == LinuxCapabilities.empty)
        #expect(process.noNewPrivileges == true)
        #expect(process.terminal == false)
        #expect(process.user == User(uid: 2000, gid: 2000))
        // Empty sets must be written as [], not left out.
        let text = String(decoding: try OCIBundle.encode(spec), as: UTF8.self)
        #expect(text.contains("\"bounding\" : [\n\n"))
        #expect(text.contains("\"ambient\" : [\n\n"))
    }

    @Test func namespacesLimitsAndPaths() throws {
        let spec = try build {
            $0.limits = .init(memoryBytes: 32 << 20, cpuShares: 128, pids: 64, nofile: 4096)
            $0.network = .path("/var/run/netns/app-0")
            $0.cgroupsPath = "/cf-like/app-0"
        }
        let linux = try #require(spec.linux)
        #expect(Set(linux.namespaces?.map(\.type) ?? []) == [.pid, .mount, .ipc, .uts, .network])
        #expect(linux.namespaces?.first { $0.type == .network }?.path == "/var/run/netns/app-0")
        #expect(linux.resources?.memory == LinuxMemory(limit: 32 << 20, swap: 32 << 20))
        #expect(linux.resources?.cpu?.shares == 128)
        #expect(linux.resources?.pids?.limit == 64)
        #expect(linux.resources?.devices?.first == LinuxDeviceCgroup(allow: false, access: "rwm"))
        #expect(spec.process?.rlimits == [POSIXRlimit(type: "RLIMIT_NOFILE", hard: 4096, soft: 4096)])
        for path in ["/proc/kcore", "/proc/keys", "/proc/sched_debug", "/sys/firmware", "/proc/timer_list"] {
            #expect(linux.maskedPaths?.contains(path) == true)
        }
        for path in ["/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq"] {
            #expect(linux.readonlyPaths?.contains(path) == true)
        }
        let destinations = spec.mounts?.map(\.destination) ?? []
        #expect(Array(destinations.prefix(6)) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"])
        #expect(spec.mounts?.first { $0.destination == "/sys" }?.options?.contains("ro") == true)
        #expect(spec.mounts?.first { $0.destination == "/dev/shm" }?.options?.contains("size=\(64 << 20)") == true)
        #expect(try build().linux?.namespaces?.first { $0.type == .network }?.path == nil)
    }

    @Test func refusesUnsafeInput() {
        #expect(throws: ContainerError.self) { try build { $0.cwd = "/proc/self/fd/7" } }
        #expect(throws: ContainerError.self) { try build { $0.cwd = "/home/../proc" } }
        #expect(throws: ContainerError.self) { try build { $0.args = ["bash"] } }
        #expect(throws: ContainerError.self) { try build { $0.rootfsPath = "rootfs" } }
        #expect(throws: ContainerError.self) { try build { $0.env = ["NOEQUALS"] } }
    }
}

@Suite("Helpers")
struct HelperTests {
    @Test func containerIDsAreChecked() throws {
        try Runc.validate(id: "app-1_2.3+x")
        for bad in ["", "-rf", "a/b", "..", "a b", "x;y"] {
            #expect(throws: ContainerError.self) { try Runc.validate(id: bad) }
        }
    }

    @Test func parsesProcCgroup() {
        let text = "9:name=systemd:/\n8:pids:/cf/x\n4:memory:/cf/x\n2:cpu,cpuacct:/cf/x\n0::/\n"
        let paths = CgroupReader.parseProcCgroup(text)
        #expect(paths["memory"] == "/cf/x")
        #expect(paths["pids"] == "/cf/x")
        #expect(paths["cpuacct"] == "/cf/x")
        #expect(paths[""] == "/")
        #expect(paths["name=systemd"] == "/")
    }

    @Test func parsesOOMCounters() {
        let v1 = CgroupReader.keyedValues("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
        #expect(v1["oom_kill"] == 3)
        let v2 = CgroupReader.keyedValues("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
        #expect(v2["max"] == 12)
        #expect(v2["oom_kill"] == 1)
        #expect(CgroupReader.number("max\n") == nil)
        #expect(CgroupReader.number("4096\n") == 4096)
    }

    @Test func mountinfoEscapes() {
        let line = "36 35 98:0 /mnt1 /mnt\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
        #expect(MountTable.parse(line) == ["/mnt dir"])
    }

    @Test func overlayOptions() throws {
        let overlay = OverlayMount(lowerDirs: ["/a", "/b"], upperDir: "/u", workDir: "/w", target: "/m")
        #expect(try overlay.optionString() == "lowerdir=/a:/b,upperdir=/u,workdir=/w")
        #expect(throws: ContainerError.self) {
            try OverlayMount(lowerDirs: ["/a,b"], upperDir: "/u", workDir: "/w", target: "/m").optionString()
        }
        #expect(throws: ContainerError.self) {
            try OverlayMount(lowerDirs: [], upperDir: "/u", workDir: "/w", target: "/m").optionString()
        }
    }

    @Test func errorDescriptionCarriesDetails() {
        let error = ContainerError(.commandFailed, "runc start failed", exitStatus: 1, stderrTail: "container not found\n")
        #expect(error.description == "commandFailed: runc start failed (exit 1) stderr: container not found")
        #expect(ContainerError("plain").kind == .other)
        #expect(ContainerError.systemCall("mount", "x", errno: EPERM).description.contains("Operation not permitted"))
    }

    @Test func commandRunnerTimesOut() async throws {
        // The child would sleep 120 s; the deadline (TERM, then KILL two seconds later, from a
        // Dispatch timer) must end it long before. The bound is loose because other suites may
        // keep the cooperative pool busy and delay this task's resumption, not the kill.
        let start = ContinuousClock.now
        let error = await #expect(throws: ContainerError.self) {
            _ = try await CommandRunner.run("/bin/sleep", ["120"], timeout: .milliseconds(500))
        }
        #expect(error?.kind == .timeout)
        #expect(ContinuousClock.now - start < .seconds(90))
        let ok = try await CommandRunner.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], timeout: .seconds(10))
        #expect(ok.status == 3)
        #expect(String(decoding: ok.stdout, as: UTF8.self) == "out\n")
        #expect(String(decoding: ok.stderr, as: UTF8.self) == "err\n")
    }
}
