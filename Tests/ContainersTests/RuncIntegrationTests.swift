import Foundation
import Testing

@testable import Containers

/// Real containers under runc. These need root and runc and FAIL (never skip) without them.
@Suite("Containers integration (needs root + runc)", .serialized)
struct RuncIntegrationTests {
    /// E1, E2, E3, E5 and the read-only /usr, checked from inside one container run as vcap.
    @Test("root+runc: container is confined (uid, caps, no_new_privs, seccomp, pid ns, devices, ro /usr)")
    func confinement() async throws {
        try await ContainerLab.with("confine") { lab in
            let script = #"""
                echo "uid=$(id -u)"
                echo "gid=$(id -g)"
                grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \t' | sed 's/:/=/'
                if mount -t tmpfs x /tmp 2>/dev/null; then echo mount=ok; else echo mount=denied; fi
                if unshare -m true 2>/dev/null; then echo unshare_m=ok; else echo unshare_m=denied; fi
                if unshare -Ur true 2>/dev/null; then echo unshare_user=ok; else echo unshare_user=denied; fi
                echo "procs=$(ls -d /proc/[0-9]* | wc -l)"
                if mknod /tmp/x b 8 0 2>/dev/null; then echo mknod=ok; else echo mknod=denied; fi
                if touch /usr/cf-like-probe 2>/dev/null; then echo usr_write=ok; else echo usr_write=denied; fi
                echo "kcore_bytes=$(head -c 16 /proc/kcore 2>/dev/null | wc -c)"
                if (echo h > /proc/sysrq-trigger) 2>/dev/null; then echo sysrq=ok; else echo sysrq=denied; fi
                echo "hostname=$(cat /proc/sys/kernel/hostname)"
                if echo hello > /home/vcap/written; then echo home_write=ok; else echo home_write=denied; fi
                bash /home/vcap/app/run.sh
                /usr/bin/python3 - <<'PY'
                import ctypes, os
                libc = ctypes.CDLL(None, use_errno=True)
                def err(r): return 0 if r >= 0 else ctypes.get_errno()
                print("sys_mount=%d" % err(libc.mount(b"x", b"/tmp", b"tmpfs", 0, None)), flush=True)
                print("sys_unshare_user=%d" % err(libc.unshare(0x10000000)), flush=True)
                r = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)  # clone(CLONE_NEWUSER|SIGCHLD)
                if r == 0:
                    os._exit(0)
                if r > 0:
                    os.waitpid(r, 0)
                print("sys_clone_user=%d" % err(r), flush=True)
                print("sys_keyctl=%d" % err(libc.syscall(250, 0, 0, 0, 0, 0)), flush=True)
                PY
                echo done=1
                """#
            try await lab.run(script)
            try await lab.waitStopped()
            let report = lab.report
            #expect(report["done"] == "1", "stdout: \(lab.stdoutText) stderr: \(lab.stderrText)")
            #expect(report["uid"] == "2000")
            #expect(report["gid"] == "2000")
            #expect(report["CapEff"] == "0000000000000000")
            #expect(report["CapPrm"] == "0000000000000000")
            #expect(report["CapBnd"] == "0000000000000000")
            #expect(report["NoNewPrivs"] == "1")
            #expect(report["Seccomp"] == "2")
            #expect(report["mount"] == "denied")           // E1
            #expect(report["unshare_m"] == "denied")       // E1
            #expect(report["unshare_user"] == "denied")    // E1: only seccomp stops this one
            #expect(report["sys_mount"] == "1")            // EPERM
            #expect(report["sys_unshare_user"] == "1")
            #expect(report["sys_clone_user"] == "1")
            #expect(report["sys_keyctl"] == "1")
            let procs = Int(report["procs"] ?? "") ?? 999
            #expect(procs < 8, "pid namespace should show only this script's processes, saw \(procs)") // E2
            #expect(report["kcore_bytes"] == "0")          // E2: masked
            #expect(report["sysrq"] == "denied")           // E2: read-only
            #expect(report["mknod"] == "denied")           // E5
            #expect(report["usr_write"] == "denied")
            #expect(report["hostname"] == lab.id)
            #expect(report["home_write"] == "ok")
            #expect(report["app"] == "ran")
            // The write landed in the per-container writable layer, not in a lower one.
            let written = try String(contentsOfFile: lab.upperDir + "/home/vcap/written", encoding: .utf8)
            #expect(written == "hello\n")
            #expect(!FileManager.default.fileExists(atPath: lab.base + "/skeleton/home/vcap/written"))
        }
    }

    /// E6: a process storm stops at the pids limit and the host keeps working.
    @Test("root+runc: pids limit stops a fork storm (E6)")
    func pidsLimit() async throws {
        try await ContainerLab.with("pids") { lab in
            let script = #"""
                /usr/bin/python3 - <<'PY'
                import os, time
                n = 0
                for i in range(200):
                    try:
                        pid = os.fork()
                    except OSError:
                        continue
                    if pid == 0:
                        time.sleep(30)
                        os._exit(0)
                    n += 1
                print("forked=%d" % n, flush=True)
                time.sleep(60)
                PY
                """#
            try await lab.run(script, limits: .init(memoryBytes: 256 << 20, cpuShares: 128, pids: 64))
            _ = try await lab.waitForOutput("forked=")
            let forked = Int(lab.report["forked"] ?? "") ?? -1
            print("pids test: \(forked) of 200 forks succeeded under pids limit 64")
            #expect(forked >= 10 && forked < 64, "forked \(forked)")
            let stats = try CgroupReader().stats(cgroupPath: lab.cgroupPath)
            #expect(stats.pidsLimit == 64)
            #expect((stats.pidsCurrent ?? 0) <= 64)
            #expect((stats.pidsCurrent ?? 0) > 10)

            // The host is unaffected: it can still start processes.
            let host = try await CommandRunner.run("/bin/true", [], timeout: .seconds(10))
            #expect(host.status == 0)

            try await lab.runc.kill(id: lab.id, signal: 9, all: true)
            try await lab.waitStopped()
        }
    }

    /// E7: allocating past the memory limit gets the process OOM-killed, and the cgroup says so.
    @Test("root+runc: memory limit OOM-kills and the cgroup reports it (E7)")
    func memoryLimit() async throws {
        try await ContainerLab.with("oom") { lab in
            // tail keeps the last "line" of /dev/zero (no newline in 200 MB) in memory.
            let script = #"head -c 200M /dev/zero | tail > /dev/null; echo "pipeline=${PIPESTATUS[1]}""#
            try await lab.run(script, limits: .init(memoryBytes: 32 << 20, cpuShares: 128, pids: 64))
            try await lab.waitStopped(timeout: .seconds(60))
            #expect(lab.report["pipeline"] == "137", "tail should die of SIGKILL; stdout: \(lab.stdoutText)")
            let stats = try CgroupReader().stats(cgroupPath: lab.cgroupPath)
            print("oom test: \(stats)")
            #expect(stats.wasOOMKilled)
            #expect((stats.oomKillCount ?? 0) >= 1)
            // memory.failcnt stays 0 on this kernel (6.18, v1) even through an OOM kill; the peak
            // shows the limit was reached.
            #expect((stats.memoryPeakBytes ?? 0) >= (32 << 20) * 9 / 10)
            #expect(stats.memoryLimitBytes == 32 << 20)
        }
    }

    /// create / state / start / exec / list / kill / delete, and nothing left behind afterwards.
    @Test("root+runc: lifecycle and cleanup leaves no container, mount or cgroup")
    func lifecycle() async throws {
        try ContainerLab.requireRootAndRunc()
        let lab = try ContainerLab(name: "life")
        do {
            try OCIBundle.create(at: lab.bundlePath, spec: lab.spec("echo started; exec sleep 300"))
            try await lab.runc.create(id: lab.id, bundle: lab.bundlePath, pidFile: lab.base + "/pid", stdio: lab.stdio)
            let created = try await lab.runc.state(id: lab.id)
            #expect(created.status == .created)
            #expect(created.pid > 0)
            #expect(created.bundle == lab.bundlePath)
            let pidFile = try String(contentsOfFile: lab.base + "/pid", encoding: .utf8)
            #expect(Int32(pidFile.trimmingCharacters(in: .whitespacesAndNewlines)) == created.pid)

            try await lab.runc.start(id: lab.id)
            _ = try await lab.waitForOutput("started")
            #expect(try await lab.runc.state(id: lab.id).status == .running)
            #expect(try await lab.runc.list().map(\.id) == [lab.id])

            let byPID = try CgroupReader().stats(ofPID: created.pid)
            let byPath = try CgroupReader().stats(cgroupPath: lab.cgroupPath)
            #expect((byPID.memoryUsageBytes ?? 0) > 0)
            #expect(byPath.memoryLimitBytes == 128 << 20)
            #expect(byPath.pidsCurrent == 1)
            #expect(byPath.oomKillCount == 0)

            let exec = try await lab.runc.exec(id: lab.id, args: ["/bin/bash", "-c", "id -u; grep CapEff /proc/self/status"])
            #expect(exec.status == 0)
            #expect(exec.stdoutText.contains("2000\n"))
            #expect(exec.stdoutText.contains("0000000000000000"))
            let failing = try await lab.runc.exec(id: lab.id, args: ["/bin/bash", "-c", "echo oops >&2; exit 4"])
            #expect(failing.status == 4)
            #expect(failing.stderrText == "oops\n")
            let slow = await #expect(throws: ContainerError.self) {
                _ = try await lab.runc.exec(id: lab.id, args: ["/bin/sleep", "30"], timeout: .milliseconds(300))
            }
            #expect(slow?.kind == .timeout)

            let missing = await #expect(throws: ContainerError.self) { try await lab.runc.start(id: "cflt-no-such") }
            #expect(missing?.kind == .commandFailed)
            #expect(missing?.exitStatus == 1)
            #expect(missing?.stderrTail?.contains("not exist") == true || missing?.stderrTail?.contains("not found") == true,
                    "\(String(describing: missing))")

            // pid 1 of a pid namespace ignores TERM it has no handler for (E13: hence a capped
            // grace period, then KILL).
            try await lab.runc.kill(id: lab.id, signal: 15)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await lab.runc.state(id: lab.id).status == .running)
            try await lab.runc.kill(id: lab.id, signal: 9)
            try await lab.waitStopped()
            try await lab.runc.delete(id: lab.id)
            #expect(try await lab.runc.list().isEmpty)
            let gone = await #expect(throws: ContainerError.self) { _ = try await lab.runc.state(id: lab.id) }
            #expect(gone?.kind == .commandFailed)
            #expect(!CgroupReader().exists(cgroupPath: lab.cgroupPath), "cgroup left behind")

            try lab.overlay.unmount()
            #expect(try !MountTable.current().contains { $0.hasPrefix(lab.base) }, "mount left behind")
            try lab.overlay.unmount() // twice is fine
        } catch {
            try? await lab.cleanup()
            throw error
        }
        try await lab.cleanup()
        #expect(!FileManager.default.fileExists(atPath: lab.base))
    }

    /// runc's error text reaches the caller when create fails.
    @Test("root+runc: a failing create reports runc's stderr")
    func createFailure() async throws {
        try await ContainerLab.with("fail") { lab in
            var spec = try lab.spec("true")
            spec.process?.args = ["/no/such/program"]
            try OCIBundle.create(at: lab.bundlePath, spec: spec)
            let error = await #expect(throws: ContainerError.self) {
                try await lab.runc.runDetached(id: lab.id, bundle: lab.bundlePath, stdio: lab.stdio)
            }
            #expect(error?.kind == .commandFailed)
            #expect(error?.stderrTail?.contains("no such file") == true, "\(String(describing: error))")
        }
    }

    /// Not an assertion: the time of `runc run` of /bin/true, for the benchmark.
    @Test("root+runc: measure runc run /bin/true (p50 of 10)")
    func measureRunTrue() async throws {
        try await ContainerLab.with("bench") { lab in
            try OCIBundle.create(at: lab.bundlePath, spec: lab.spec("true").replacingArgs(["/bin/true"]))
            var samples: [Duration] = []
            for run in 0..<10 {
                let id = "\(lab.id)-\(run)"
                let start = ContinuousClock.now
                let status = try await lab.runc.runToCompletion(id: id, bundle: lab.bundlePath, stdio: lab.stdio, timeout: .seconds(30))
                samples.append(ContinuousClock.now - start)
                #expect(status == 0, "stderr: \(lab.stderrText)")
            }
            samples.sort()
            let ms = samples.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1000 }
            print("runc run /bin/true: p50 \(String(format: "%.1f", ms[4])) ms, min \(String(format: "%.1f", ms[0])) ms, max \(String(format: "%.1f", ms[9])) ms over 10 runs")
        }
    }
}

extension Spec {
    fileprivate func replacingArgs(_ args: [String]) -> Spec {
        var copy = self
        copy.process?.args = args
        return copy
    }
}
