import Foundation
import Synchronization
import Testing

@testable import Containers

/// How programs are run: deadlines that end the whole process group and always give the caller
/// an answer, stdio that no daemonised descendant can hold up, and a clean signal state.
///
/// Bounds are loose on purpose: on a busy two-core machine a resumed task can wait many
/// seconds for a pool thread. Each bound is far below what the missing mechanism would take
/// (a program that sleeps 1000 s, a child that never dies).
@Suite("Command runner")
struct CommandRunnerTests {
    @Test("a program that never exits times out, and its whole process group is gone")
    func neverExitingProgramTimesOut() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let began = ContinuousClock.now
        let outcome = await Self.within(.seconds(90)) {
            try await CommandRunner.run(
                "/bin/sh", ["-c", Self.leaderAndChild, "sh", scratch.dir],
                stdin: .null, stdout: .capture, stderr: .capture, timeout: Self.loadedStart)
        }
        #expect(Self.timedOut(outcome), "\(Self.describe(outcome))")
        #expect(ContinuousClock.now - began >= Self.loadedStart)
        try await Self.expectGone(scratch, ["leader", "child"])
    }

    @Test("a program that ignores SIGTERM is killed after the grace period, with its group")
    func termIgnoringProgramIsKilled() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let began = ContinuousClock.now
        // An ignored signal stays ignored across fork and exec, so the grandchild is deaf too.
        let outcome = await Self.within(.seconds(90)) {
            try await CommandRunner.run(
                "/bin/sh", ["-c", "trap '' TERM; " + Self.leaderAndChild, "sh", scratch.dir],
                timeout: Self.loadedStart)
        }
        #expect(Self.timedOut(outcome), "\(Self.describe(outcome))")
        #expect(ContinuousClock.now - began >= Self.loadedStart + CommandRunner.killGrace)
        try await Self.expectGone(scratch, ["leader", "child"])
    }

    @Test("a cancelled caller gets a timeout at once and the program's group is killed")
    func cancelledCallerKillsTheGroup() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let call = Task {
            try await CommandRunner.run(
                "/bin/sh", ["-c", Self.leaderAndChild, "sh", scratch.dir],
                timeout: .seconds(600))
        }
        _ = try await scratch.waitForPID("leader")
        _ = try await scratch.waitForPID("child")
        call.cancel()
        let outcome = await Self.within(.seconds(60)) { try await call.value }
        #expect(Self.timedOut(outcome), "\(Self.describe(outcome))")
        try await Self.expectGone(scratch, ["leader", "child"])
    }

    @Test("a daemonised grandchild holding stdout and stderr does not hold up the call")
    func daemonisedGrandchildDoesNotBlock() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        // Both grandchildren inherit the capture streams and outlive their parent by far, one
        // in the group, one in a session of its own; with output read from pipes until EOF,
        // the call would wait for them.
        let script = #"""
            sleep 1000 & echo $! > "$1/child"
            setsid sh -c 'echo $$ > "$1/daemon"; exec sleep 1000' sh "$1" &
            echo out; echo err >&2
            """#
        let outcome = await Self.within(.seconds(60)) {
            try await CommandRunner.run("/bin/sh", ["-c", script, "sh", scratch.dir], timeout: .seconds(120))
        }
        // Written by the daemon itself, maybe after the call returned.
        _ = try? await scratch.waitForPID("daemon", timeout: .seconds(30))
        defer {
            for name in ["child", "daemon"] { if let pid = scratch.pid(name) { kill(pid, SIGKILL) } }
        }
        guard case .success(let result)? = outcome else {
            Issue.record("the call did not return: \(Self.describe(outcome))")
            return
        }
        #expect(result.status == 0)
        #expect(String(decoding: result.stdout, as: UTF8.self) == "out\n")
        #expect(String(decoding: result.stderr, as: UTF8.self) == "err\n")
        let child = try #require(scratch.pid("child"))
        #expect(Self.processState(child) != nil, "the grandchild should still run: it must not be killed on a normal exit")
    }

    @Test("the child starts with an empty signal mask, default dispositions and its own process group")
    func childSignalStateAndGroup() async throws {
        // The agent's threads block the signals its handlers wait for (SIGTERM among them), and
        // a mask survives fork and exec. This thread blocks one no test uses, so the check does
        // not depend on which thread happens to start the child.
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGUSR2)
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        defer { pthread_sigmask(SIG_UNBLOCK, &blocked, nil) }

        let status = try await CommandRunner.run("/bin/grep", ["-E", "^Sig(Blk|Ign):", "/proc/self/status"], timeout: .seconds(60))
        let child = try #require(Self.signalMasks(String(decoding: status.stdout, as: UTF8.self)))
        #expect(child.blocked == 0, "SigBlk \(String(child.blocked, radix: 16))")
        // glibc refuses to change the dispositions of 32 and 33, its own signals, so they stay
        // as this process has them: default when it was started by fork and exec, ignored when
        // glibc's posix_spawn started it (as `swift test` does). Every other one is default.
        let own = try #require(Self.signalMasks(try String(contentsOfFile: "/proc/self/status", encoding: .utf8)))
        let reserved: UInt64 = 0b11 << 31
        #expect(child.ignored == own.ignored & reserved, "SigIgn \(String(child.ignored, radix: 16)), this process's \(String(own.ignored, radix: 16))")

        let stat = try await CommandRunner.run("/bin/cat", ["/proc/self/stat"], timeout: .seconds(60))
        let text = String(decoding: stat.stdout, as: UTF8.self)
        let pid = try #require(Int32(text.prefix { $0 != " " }))
        let fields = try #require(Self.fieldsAfterName(text))
        // state, ppid, pgrp, session
        #expect(fields.count > 3 && Int32(fields[2]) == pid, "pgrp of \(pid): \(text)")
    }

    @Test("several MiB on stdout and stderr at once are captured without deadlock")
    func largeOutputOnBothStreams() async throws {
        let size = 4 << 20
        let outcome = await Self.within(.seconds(120)) {
            try await CommandRunner.run(
                "/bin/sh", ["-c", "(yes o | head -c \(size)) & (yes e | head -c \(size) >&2) & wait"],
                timeout: .seconds(100))
        }
        guard case .success(let result)? = outcome else {
            Issue.record("the call did not return: \(Self.describe(outcome))")
            return
        }
        #expect(result.status == 0)
        #expect(result.stdout.count == size)
        #expect(result.stderr.count == size)
        // Each stream holds only its own lines: nothing lost, nothing interleaved.
        #expect(Set(result.stdout) == [UInt8(ascii: "o"), UInt8(ascii: "\n")])
        #expect(Set(result.stderr) == [UInt8(ascii: "e"), UInt8(ascii: "\n")])
    }

    @Test("fifty concurrent short runs all return with their own output")
    func fiftyConcurrentRuns() async throws {
        let outcome = await Self.within(.seconds(120)) {
            try await withThrowingTaskGroup(of: (Int, CommandResult).self) { group in
                for index in 0..<50 {
                    group.addTask { (index, try await CommandRunner.run("/bin/echo", ["run \(index)"], timeout: .seconds(100))) }
                }
                var results: [Int: CommandResult] = [:]
                for try await (index, result) in group { results[index] = result }
                return results
            }
        }
        guard case .success(let results)? = outcome else {
            Issue.record("the runs did not all return: \(outcome.map { "\($0)" } ?? "still running")")
            return
        }
        #expect(results.count == 50)
        for (index, result) in results {
            #expect(result.status == 0)
            #expect(String(decoding: result.stdout, as: UTF8.self) == "run \(index)\n")
        }
    }

    @Test("a watch whose work never ends still answers, after the deadline and both graces")
    func watchAnswersWhenTheExitIsNeverSeen() async {
        let watch = ChildWatch(killGrace: .milliseconds(100), reapGrace: .milliseconds(100))
        let began = ContinuousClock.now
        let outcome = await watch.run(timeout: .milliseconds(200)) {
            // Stands for a monitor that never reports the exit.
            await withUnsafeContinuation { (_: UnsafeContinuation<ChildWatch.Outcome, Never>) in }
        }
        guard case .abandoned = outcome else {
            Issue.record("expected .abandoned, got \(outcome)")
            return
        }
        #expect(watch.expired)
        #expect(ContinuousClock.now - began >= .milliseconds(400))
    }

    @Test("a caller cancelled before the call starts nothing and gets a timeout")
    func cancelledBeforeStarting() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let call = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await CommandRunner.run("/bin/sh", ["-c", #"echo $$ > "$1/leader""#, "sh", scratch.dir], timeout: .seconds(60))
        }
        let outcome = await Self.within(.seconds(60)) { try await call.value }
        #expect(Self.timedOut(outcome), "\(Self.describe(outcome))")
        #expect(scratch.pid("leader") == nil, "the program ran")
    }

    @Test("root+freezer: a child that cannot die (frozen cgroup) still lets the call return as a timeout")
    func frozenChildStillReturns() async throws {
        try #require(getuid() == 0, "freezing a cgroup needs root")
        let freezer = "/sys/fs/cgroup/freezer"
        try #require(FileManager.default.fileExists(atPath: freezer + "/freezer.state") || FileManager.default.fileExists(atPath: freezer + "/cgroup.procs"),
                     "needs the cgroup v1 freezer at \(freezer) (a v2 freeze lets SIGKILL through)")
        let scratch = try Scratch()
        defer { scratch.remove() }
        let cgroup = freezer + "/cflike-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: cgroup, withIntermediateDirectories: false)
        try Data("FROZEN".utf8).write(to: URL(fileURLWithPath: cgroup + "/freezer.state"))
        defer { Self.removeFrozen(cgroup) }

        // The child joins the frozen cgroup itself, so it is frozen before any deadline can
        // pass however slowly it started. SIGTERM and SIGKILL then stay pending: its exit is
        // never observed while it is frozen, which is what a caller must survive.
        let began = ContinuousClock.now
        let outcome = await Self.within(.seconds(90)) {
            try await CommandRunner.run(
                "/bin/sh", ["-c", #"echo $$ > "$1/leader"; echo $$ > "$2/cgroup.procs"; exec sleep 1000"#, "sh", scratch.dir, cgroup],
                timeout: Self.loadedStart)
        }
        #expect(Self.timedOut(outcome), "\(Self.describe(outcome))")
        #expect(ContinuousClock.now - began >= Self.loadedStart)
        guard let leader = scratch.pid("leader") else {
            // Killed before it could freeze itself: nothing of it may be left.
            #expect(scratch.survivors().isEmpty)
            return
        }
        try Data("THAWED".utf8).write(to: URL(fileURLWithPath: cgroup + "/freezer.state"))
        // The pending SIGKILL takes effect once thawed.
        #expect(try await ShimFakeRuncTests.waitGone(leader), "leader \(leader) survived its thaw")
    }
}

// MARK: - Helpers

extension CommandRunnerTests {
    /// Writes its pid to `$1/leader`, starts a grandchild in its group (pid in `$1/child`),
    /// then becomes a long sleep itself.
    /// A deadline a loaded machine's shell start cannot outrun often: a full test run starts
    /// ~600 tests at once on 2 cores, and a shell may take seconds to run its first command.
    static let loadedStart: Duration = .seconds(5)

    static let leaderAndChild = #"echo $$ > "$1/leader"; sleep 1000 & echo $! > "$1/child"; exec sleep 1000"#

    /// A directory for one test's pid files.
    struct Scratch {
        let dir: String

        init() throws {
            dir = FileManager.default.temporaryDirectory.path + "/cf-like-runner-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }

        /// Live processes whose command line names this scratch directory.
        func survivors() -> [Int32] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.compactMap(Int32.init).filter { pid in
                guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                      String(decoding: data, as: UTF8.self).contains(dir) else { return false }
                return CommandRunnerTests.processState(pid) != nil
            }
        }

        func pid(_ name: String) -> Int32? {
            (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        func waitForPID(_ name: String, timeout: Duration = .seconds(60)) async throws -> Int32 {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let pid = pid(name) { return pid }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw ContainerError("\(name) never appeared in \(dir)")
        }

        func remove() { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// Runs `body` in a task of its own and waits at most `limit` for it: nil when it did not
    /// finish, so a hang fails the test instead of stalling the run.
    static func within<T: Sendable>(
        _ limit: Duration, _ body: @escaping @Sendable () async throws -> T
    ) async -> Result<T, any Error>? {
        let slot = Mutex<(CheckedContinuation<Result<T, any Error>?, Never>?, Bool)>((nil, false))
        let finish: @Sendable (Result<T, any Error>?) -> Void = { value in
            let waiter = slot.withLock { state -> CheckedContinuation<Result<T, any Error>?, Never>? in
                guard !state.1 else { return nil }
                state.1 = true
                defer { state.0 = nil }
                return state.0
            }
            waiter?.resume(returning: value)
        }
        return await withCheckedContinuation { continuation in
            slot.withLock { $0.0 = continuation }
            Task {
                do { finish(.success(try await body())) } catch { finish(.failure(error)) }
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(CommandRunner.nanoseconds(limit))) { finish(nil) }
        }
    }

    /// An outcome in a few words: status and sizes, not megabytes of output.
    static func describe(_ outcome: Result<CommandResult, any Error>?) -> String {
        switch outcome {
        case nil: "still running"
        case .success(let result)?: "exited \(result.status) with \(result.stdout.count) + \(result.stderr.count) bytes"
        case .failure(let error)?: "\(error)".prefix(2000).description
        }
    }

    static func timedOut(_ outcome: Result<CommandResult, any Error>?) -> Bool {
        guard case .failure(let error)? = outcome, let error = error as? ContainerError else { return false }
        return error.kind == .timeout
    }

    /// Every pid named in `names` must have been written, and be gone (or a zombie) by now.
    static func expectGone(_ scratch: Scratch, _ names: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for name in names {
            guard let pid = scratch.pid(name) else {
                // Killed before it wrote its pid (a loaded machine starts shells slowly): then
                // nothing that names the scratch directory may be left.
                #expect(scratch.survivors().isEmpty, "\(name) never wrote its pid and processes of the test remain",
                        sourceLocation: sourceLocation)
                continue
            }
            // The group was killed before the call returned; only reaping may still be under way.
            let gone = try await ShimFakeRuncTests.waitGone(pid, timeout: .seconds(10))
            if !gone { kill(pid, SIGKILL) }
            #expect(gone, "\(name) \(pid) outlived the call", sourceLocation: sourceLocation)
        }
    }

    /// The state letter of a live process, nil once it is gone or a zombie.
    static func processState(_ pid: Int32) -> Character? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let state = fieldsAfterName(text)?.first?.first, state != "Z"
        else { return nil }
        return state
    }

    /// SigBlk and SigIgn of a `/proc/<pid>/status` text.
    static func signalMasks(_ status: String) -> (blocked: UInt64, ignored: UInt64)? {
        var masks: [String: UInt64] = [:]
        for line in status.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            masks[String(parts[0])] = UInt64(parts[1].trimmingCharacters(in: .whitespaces), radix: 16)
        }
        guard let blocked = masks["SigBlk"], let ignored = masks["SigIgn"] else { return nil }
        return (blocked, ignored)
    }

    /// The fields of a `/proc/<pid>/stat` line after the parenthesised command name.
    static func fieldsAfterName(_ stat: String) -> [Substring]? {
        guard let end = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: end)...].split(separator: " ")
    }

    /// Thaws and removes a test freezer cgroup, killing what is left in it.
    static func removeFrozen(_ cgroup: String) {
        try? Data("THAWED".utf8).write(to: URL(fileURLWithPath: cgroup + "/freezer.state"))
        let procs = (try? String(contentsOfFile: cgroup + "/cgroup.procs", encoding: .utf8)) ?? ""
        for line in procs.split(separator: "\n") { if let pid = Int32(line) { kill(pid, SIGKILL) } }
        // A member killed just now may not be reaped yet, and the cgroup is busy until it is.
        for _ in 0..<100 {
            if rmdir(cgroup) == 0 || errno == ENOENT { return }
            usleep(20_000)
        }
    }
}
