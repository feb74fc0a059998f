import Foundation
import Testing

@testable import Containers

/// Real containers under runc, started through cf-like-shim. These need root, runc and the
/// built shim and FAIL (never skip) without them.
@Suite("Container shim integration (needs root + runc)", .serialized)
struct ShimIntegrationTests {
    @Test("root+runc: stdout and stderr reach the log in order with their streams; exit 3 is recorded")
    func exitCodeAndStreams() async throws {
        try await ShimLab.with("exit") { lab in
            let id = lab.id(0)
            let script = """
                echo out-1; sleep 0.1; echo err-1 >&2; sleep 0.1; echo 'out 2  spaced'; sleep 0.1
                head -c 150000 /dev/zero | tr '\\0' a; echo; sleep 0.1
                printf no-newline; exit 3
                """
            let started = try await lab.launch(script, id: id)
            #expect(started.containerPID > 0)
            #expect(started.shimPID > 0 && started.shimPID != started.containerPID)
            #expect(ContainerShim.containerPID(stateDir: lab.stateDir(id)) == started.containerPID)

            let exit = try await lab.waitForExit(id)
            #expect(exit == .exited(3))
            #expect(exit.status == 3)
            let record = try #require(ContainerShim.exitRecord(stateDir: lab.stateDir(id)))
            #expect(abs(record.timestamp.timeIntervalSinceNow) < 60)

            let records = try lab.records(id)
            #expect(records.map(\.stream) == [.out, .err, .out, .out, .out, .out, .out], "\(lab.logText(id))")
            // A line longer than 64 KiB arrives in 64 KiB pieces.
            let long = [65536, 65536, 150_000 - 2 * 65536].map { String(repeating: "a", count: $0) }
            #expect(records.map(\.text) == ["out-1", "err-1", "out 2  spaced"] + long + ["no-newline"])
            #expect(records.map(\.timestampNanos) == records.map(\.timestampNanos).sorted())
            // The shim leaves the container for the agent to delete, and goes.
            try await lab.waitForShimGone(id)
            #expect(try await lab.runc.state(id: id).status == .stopped)
            try await lab.runc.delete(id: id)
            #expect(!CgroupReader().exists(cgroupPath: lab.cgroupPath(id)))
        }
    }

    @Test("root+runc: runc kill 9 is recorded as signaled 9; the app inherits no ignored or blocked signals")
    func killedBySignal() async throws {
        try await ShimLab.with("kill") { lab in
            let id = lab.id(0)
            _ = try await lab.launch("grep -E '^Sig(Ign|Blk):' /proc/self/status; exec sleep 300", id: id)
            var masks: [String: String] = [:]
            let deadline = ContinuousClock.now + .seconds(10)
            while masks.count < 2, ContinuousClock.now < deadline {
                for line in try lab.records(id).map(\.text) {
                    let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    if parts.count == 2 { masks[parts[0]] = parts[1] }
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            // The shim ignores HUP, INT, PIPE and TERM itself; the app must get them back.
            #expect(masks["SigIgn"] == "0000000000000000", "\(lab.logText(id))")
            #expect(masks["SigBlk"] == "0000000000000000")
            #expect(ContainerShim.exit(stateDir: lab.stateDir(id)) == nil)
            #expect(ContainerShim.shimAlive(stateDir: lab.stateDir(id)))

            try await lab.runc.kill(id: id, signal: 9)
            let exit = try await lab.waitForExit(id)
            #expect(exit == .signaled(9))
            #expect(exit.status == 137)
            try await lab.waitForShimGone(id)
        }
    }

    @Test("root+runc: an OOM kill is signaled 9 and the cgroup with its OOM count stays until runc delete")
    func outOfMemory() async throws {
        try await ShimLab.with("oom") { lab in
            let id = lab.id(0)
            _ = try await lab.launch(#"exec /usr/bin/python3 -c "x = b'x' * (256 << 20)""#, id: id, memoryBytes: 64 << 20)
            let exit = try await lab.waitForExit(id, timeout: .seconds(60))
            #expect(exit == .signaled(9), "\(lab.logText(id))")
            try await lab.waitForShimGone(id)
            // The shim did not delete the container: the agent can still learn why it died.
            #expect(CgroupReader().exists(cgroupPath: lab.cgroupPath(id)))
            let stats = try CgroupReader().stats(cgroupPath: lab.cgroupPath(id))
            #expect(stats.wasOOMKilled, "\(stats)")
            #expect(stats.memoryLimitBytes == 64 << 20)
            try await lab.runc.delete(id: id)
            #expect(!CgroupReader().exists(cgroupPath: lab.cgroupPath(id)))
        }
    }

    @Test("root+runc: a broken bundle makes launch throw runc's words and leaves nothing behind")
    func brokenBundle() async throws {
        try await ShimLab.with("broken") { lab in
            let id = lab.id(0)
            try OCIBundle.create(at: lab.bundle(id), spec: lab.spec(args: ["/no/such/program"], id: id))
            let error = await #expect(throws: ContainerError.self) {
                _ = try await lab.shim().launch(id: id, bundle: lab.bundle(id), stateDir: lab.stateDir(id))
            }
            #expect(error?.kind == .commandFailed)
            #expect(error?.exitStatus == 1)
            #expect(error?.message.contains("runc run exited 1") == true, "\(String(describing: error))")
            #expect(error?.message.contains("/no/such/program") == true)
            #expect(error?.message.contains("no such file or directory") == true)

            try await lab.waitForShimGone(id)
            #expect(try await lab.runc.list().isEmpty)
            #expect(!CgroupReader().exists(cgroupPath: lab.cgroupPath(id)))
            #expect(ContainerShim.exit(stateDir: lab.stateDir(id)) == nil)
            // The log says why the app never ran.
            let system = try lab.records(id).filter { $0.stream == .system }.map(\.text)
            #expect(system.contains { $0.contains("container failed to start") && $0.contains("/no/such/program") }, "\(system)")

            // A missing bundle fails the same way.
            let missing = await #expect(throws: ContainerError.self) {
                _ = try await lab.shim().launch(id: lab.id(1), bundle: lab.base + "/no-bundle", stateDir: lab.stateDir(lab.id(1)))
            }
            #expect(missing?.kind == .commandFailed)
            #expect(missing?.message.contains("runc run exited 1") == true, "\(String(describing: missing))")
            try await lab.waitForShimGone(lab.id(1))
            #expect(try await lab.runc.list().isEmpty)
        }
    }

    @Test("root+runc: the shim outlives whoever launched it and keeps logging")
    func outlivesLauncher() async throws {
        try await ShimLab.with("orphan") { lab in
            let script = "for i in $(seq 1 3000); do echo tick-$i; sleep 0.05; done"

            // Through the API: the launcher process is gone once launch returns.
            let id = lab.id(0)
            let started = try await lab.launch(script, id: id)
            let stat = try Self.procStat(started.shimPID)
            #expect(stat.ppid != getpid(), "the shim must not be the test process's child")
            #expect(stat.sid == started.shimPID, "the shim leads its own session")
            // It ignores exactly what could reach it from the agent's side, and blocks nothing,
            // although the launcher was started from a worker thread that blocks nearly everything.
            let masks = try Self.signalMasks(started.shimPID)
            let expected = [SIGHUP, SIGINT, SIGPIPE, SIGTERM].reduce(UInt64(0)) { $0 | (1 << UInt64($1 - 1)) }
            #expect(masks.ignored == expected, "SigIgn \(String(masks.ignored, radix: 16))")
            #expect(masks.blocked == 0, "SigBlk \(String(masks.blocked, radix: 16))")
            // A hang-up or TERM aimed at the agent's session does not stop it.
            #expect(kill(started.shimPID, SIGHUP) == 0)
            #expect(kill(started.shimPID, SIGTERM) == 0)

            // Through an "agent" that is killed right after the launch.
            let second = lab.id(1)
            try FileManager.default.createDirectory(atPath: lab.stateDir(second), withIntermediateDirectories: true)
            try OCIBundle.create(at: lab.bundle(second), spec: lab.spec(args: ["/bin/bash", "-c", script], id: second))
            let verdict = lab.base + "/agent.out"
            let agent = Foundation.Process()
            agent.executableURL = URL(fileURLWithPath: "/bin/bash")
            agent.arguments = [
                "-c", #""$@" > "$0"; exec sleep 60"#, verdict, try #require(ContainerShim.locate()),
                "--runc", lab.runc.executable, "--runc-root", try #require(lab.runc.root), "--id", second,
                "--bundle", lab.bundle(second), "--state-dir", lab.stateDir(second),
            ]
            try agent.run()
            defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
            let deadline = ContinuousClock.now + .seconds(30)
            while !((try? String(contentsOfFile: verdict, encoding: .utf8)) ?? "").hasPrefix("started "), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(((try? String(contentsOfFile: verdict, encoding: .utf8)) ?? "").hasPrefix("started "))
            #expect(kill(agent.processIdentifier, SIGKILL) == 0)
            agent.waitUntilExit()
            #expect(agent.terminationReason == .uncaughtSignal)

            try await Task.sleep(for: .milliseconds(300))
            for container in [id, second] {
                #expect(ContainerShim.shimAlive(stateDir: lab.stateDir(container)), "shim of \(container) died")
                var reader = ShimLogReader(stateDir: lab.stateDir(container))
                let before = try reader.read(maxRecords: 100_000)
                // It keeps logging: new ticks follow (about 10 a second, fewer on a loaded machine).
                var after: [ShimLogRecord] = []
                let deadline = ContinuousClock.now + .seconds(20)
                while after.count < 3, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    after += try reader.read(maxRecords: 100_000)
                }
                #expect(!before.isEmpty && after.count >= 3, "\(container): \(before.count) then \(after.count) lines")
                // In order, no gaps or repeats across the two reads.
                let numbers = (before + after).compactMap { Int($0.text.dropFirst("tick-".count)) }
                #expect(numbers == Array(1...numbers.count))
            }
            for container in [id, second] {
                try await lab.runc.kill(id: container, signal: 9)
                #expect(try await lab.waitForExit(container) == .signaled(9))
                try await lab.waitForShimGone(container)
            }
        }
    }

    @Test("root+runc: a log flood never blocks the app; drops are counted and the files stay under the budget")
    func flood() async throws {
        try await ShimLab.with("flood") { lab in
            let line = "flood line padded to be longer than a pipe buffer would hold for long ......"
            let script = "yes '\(line)' | head -n 300000; echo flood-done"

            // Ample budget: every line is either in the log or counted as dropped.
            let counted = lab.id(0)
            let begin = ContinuousClock.now
            _ = try await lab.launch(script, id: counted)
            #expect(try await lab.waitForExit(counted, timeout: .seconds(60)) == .exited(0))
            let elapsed = ContinuousClock.now - begin
            print("shim flood: 300000 lines of \(line.utf8.count + 1) bytes relayed, app finished after \(elapsed)")
            #expect(elapsed < .seconds(20), "the app was held up for \(elapsed)")
            let records = try lab.records(counted)
            let kept = records.filter { $0.stream == .out }
            let notices = records.filter { $0.stream == .system }.map(\.text)
            let dropped = notices.compactMap(Self.droppedCount).reduce(0, +)
            #expect(!notices.isEmpty && notices.allSatisfy { $0.hasSuffix("log lines (over 1000 lines/s)") }, "\(notices)")
            #expect(kept.count + dropped == 300_001, "kept \(kept.count) + dropped \(dropped)")
            #expect(kept.count >= 2000, "the burst passes")
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            #expect(Double(kept.count) <= 2000 + 1000 * seconds + 10, "kept \(kept.count) in \(seconds) s")
            print("shim flood: kept \(kept.count), dropped \(dropped), \(notices.count) notices")

            // Small budget: log and log.1 together stay under it while the flood rotates them.
            let budget = 32 << 10
            let bounded = lab.id(1)
            _ = try await lab.launch(script, id: bounded, shim: lab.shim(logMaxBytes: budget))
            #expect(try await lab.waitForExit(bounded, timeout: .seconds(60)) == .exited(0))
            let sizes = [ShimStateDirectory.log, ShimStateDirectory.rotatedLog].map {
                Runc.fileSize(lab.stateDir(bounded) + "/" + $0)
            }
            #expect(sizes[1] > 0, "log.1 exists after the flood")
            #expect(sizes.reduce(0, +) <= UInt64(budget), "log + log.1 = \(sizes)")
            let tail = try lab.records(bounded)
            #expect(tail.contains { $0.stream == .system && Self.droppedCount($0.text) != nil })
        }
    }

    @Test("root+runc: a reader resuming from saved positions follows rotations without losing or repeating lines")
    func readerAcrossRotations() async throws {
        try await ShimLab.with("rotate") { lab in
            let id = lab.id(0)
            // Three phases of numbered lines, each released by a file the test creates.
            let script = #"""
                n=0; phase=0
                for count in 500 1000 500; do
                  phase=$((phase + 1))
                  while [ ! -e /home/vcap/app/go-$phase ]; do sleep 0.02; done
                  for ((k = 0; k < count; k++)); do n=$((n + 1)); printf 'line-%06d\n' $n; done
                  echo phase-$phase-done >&2
                done
                """#
            // 64 KiB budget: each file holds about 960 lines, so phases 2 and 3 each rotate once.
            let shim = try lab.shim(logMaxBytes: 64 << 10, linesPerSecond: 1_000_000, burst: 1_000_000)
            _ = try await lab.launch(script, id: id, shim: shim)
            let state = lab.stateDir(id)
            var saved = try JSONEncoder().encode(ShimLogPosition.beginning)
            var lines: [String] = []
            var phases: [String] = []

            /// Reads in small batches, each from a position decoded from the last saved one,
            /// as a restarted agent would, until `marker` arrived on stderr.
            func follow(until marker: String) async throws {
                let deadline = ContinuousClock.now + .seconds(30)
                while !phases.contains(marker), ContinuousClock.now < deadline {
                    var reader = ShimLogReader(stateDir: state, position: try JSONDecoder().decode(ShimLogPosition.self, from: saved))
                    let batch = try reader.read(maxRecords: 137)
                    saved = try JSONEncoder().encode(reader.position)
                    for record in batch {
                        switch record.stream {
                        case .out: lines.append(record.text)
                        case .err: phases.append(record.text)
                        case .system: Issue.record("unexpected shim line: \(record.text)")
                        }
                    }
                    if batch.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(phases.contains(marker), "\(lab.logText(id))")
            }
            func release(_ phase: Int) {
                _ = FileManager.default.createFile(atPath: lab.appDir + "/go-\(phase)", contents: nil)
            }

            release(1)
            try await follow(until: "phase-1-done")
            let firstInode = try JSONDecoder().decode(ShimLogPosition.self, from: saved).inode
            #expect(!FileManager.default.fileExists(atPath: state + "/log.1"))

            release(2)
            try await follow(until: "phase-2-done")
            #expect(FileManager.default.fileExists(atPath: state + "/log.1"), "phase 2 rotated the log")
            #expect(try JSONDecoder().decode(ShimLogPosition.self, from: saved).inode != firstInode)

            // Phase 3 rotates again while the reader stands still: it must finish log.1 first.
            release(3)
            #expect(try await lab.waitForExit(id) == .exited(0))
            try await follow(until: "phase-3-done")

            #expect(lines == (1...2000).map { String(format: "line-%06d", $0) }, "\(lines.count) lines")
            #expect(phases == ["phase-1-done", "phase-2-done", "phase-3-done"])
            var finalReader = ShimLogReader(stateDir: state, position: try JSONDecoder().decode(ShimLogPosition.self, from: saved))
            #expect(try finalReader.read().isEmpty)
        }
    }

    @Test("root+runc: measure launch through the shim against bare runc run -d (p50/p99 of 20)")
    func measureLaunch() async throws {
        try await ShimLab.with("bench") { lab in
            let shim = try lab.shim()
            var viaShim: [Duration] = []
            var bare: [Duration] = []
            let stdio = ContainerStdio(stdout: lab.base + "/bare.out", stderr: lab.base + "/bare.err")
            for run in 0..<20 {
                let shimID = lab.id(2 * run)
                try OCIBundle.create(at: lab.bundle(shimID), spec: lab.spec(args: ["/bin/true"], id: shimID))
                var start = ContinuousClock.now
                _ = try await shim.launch(id: shimID, bundle: lab.bundle(shimID), stateDir: lab.stateDir(shimID))
                viaShim.append(ContinuousClock.now - start)
                #expect(try await lab.waitForExit(shimID) == .exited(0))
                try await lab.runc.delete(id: shimID, force: true)

                let bareID = lab.id(2 * run + 1)
                try OCIBundle.create(at: lab.bundle(bareID), spec: lab.spec(args: ["/bin/true"], id: bareID))
                start = ContinuousClock.now
                try await lab.runc.runDetached(id: bareID, bundle: lab.bundle(bareID), pidFile: lab.base + "/bare.pid", stdio: stdio)
                bare.append(ContinuousClock.now - start)
                let deadline = ContinuousClock.now + .seconds(10)
                while try await lab.runc.state(id: bareID).status != .stopped, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                try await lab.runc.delete(id: bareID, force: true)
            }
            viaShim.sort()
            bare.sort()
            let report = { (samples: [Duration]) in
                String(format: "p50 %.1f ms, p99 %.1f ms", ShimLab.percentileMilliseconds(samples, 50), ShimLab.percentileMilliseconds(samples, 99))
            }
            print("launch of /bin/true over 20 runs: shim \(report(viaShim)); bare runc run -d \(report(bare))")
            #expect(viaShim.count == 20 && bare.count == 20)
            #expect(try await lab.runc.list().isEmpty)
        }
    }

    // MARK: Helpers

    /// N from `cf-like: dropped N log lines (over R lines/s)`.
    static func droppedCount(_ text: String) -> Int? {
        guard text.hasPrefix("cf-like: dropped ") else { return nil }
        return Int(text.dropFirst("cf-like: dropped ".count).prefix { $0.isNumber })
    }

    /// Parent pid and session id from /proc/PID/stat.
    static func procStat(_ pid: Int32) throws -> (ppid: Int32, sid: Int32) {
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/\(pid)/stat"))
        defer { try? handle.close() }
        let text = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        let end = try #require(text.lastIndex(of: ")"))
        // After "pid (comm)": state ppid pgrp session ...
        let fields = text[text.index(after: end)...].split(separator: " ")
        return (try #require(Int32(fields[1])), try #require(Int32(fields[3])))
    }

    /// The SigIgn and SigBlk masks of a process.
    static func signalMasks(_ pid: Int32) throws -> (ignored: UInt64, blocked: UInt64) {
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/\(pid)/status"))
        defer { try? handle.close() }
        let lines = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self).split(separator: "\n")
        func mask(_ key: String) throws -> UInt64 {
            let line = try #require(lines.first { $0.hasPrefix(key + ":") })
            return try #require(UInt64(line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces), radix: 16))
        }
        return (try mask("SigIgn"), try mask("SigBlk"))
    }
}
