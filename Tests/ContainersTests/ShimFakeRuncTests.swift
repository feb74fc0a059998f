import Foundation
import Testing

@testable import Containers

/// The shim's failure paths, driven by a stand-in for runc (a bash script) so they can be
/// provoked at will: a runc that hangs, a run that fails after it left a container process.
@Suite("Container shim with a stand-in runc", .serialized)
struct ShimFakeRuncTests {
    /// A directory with the stand-in `runc`, which reads its behaviour from `mode` next to it
    /// and appends each subcommand it gets to `calls`.
    struct FakeRunc {
        let dir: String
        var executable: String { dir + "/runc" }

        static let script = #"""
            #!/bin/bash
            dir=$(dirname "$0")
            mode=$(cat "$dir/mode")
            cmd=""; pidfile=""
            while [ $# -gt 0 ]; do
              case "$1" in
                run|delete) cmd=$1 ;;
                --pid-file) pidfile=$2; shift ;;
              esac
              shift
            done
            echo "$cmd" >> "$dir/calls"
            case "$mode/$cmd" in
              hang/run) echo $$ > "$dir/hung.pid"; exec sleep 30 ;;
              runfails/run) sleep 30 & echo $! > "$pidfile"; echo $! > "$dir/init.pid"; echo "cannot start container: boom" >&2; exit 1 ;;
              */delete) if [ -f "$dir/init.pid" ]; then kill -9 "$(cat "$dir/init.pid")"; fi; exit 0 ;;
              *) exit 0 ;;
            esac
            """#

        init(mode: String) throws {
            dir = FileManager.default.temporaryDirectory.path + "/cf-like-fake-runc-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Data(Self.script.utf8).write(to: URL(fileURLWithPath: executable))
            #expect(chmod(executable, 0o755) == 0)
            try Data(mode.utf8).write(to: URL(fileURLWithPath: dir + "/mode"))
        }

        var calls: [String] {
            ((try? String(contentsOfFile: dir + "/calls", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        func pid(_ name: String) -> Int32? {
            (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        func shim() throws -> ContainerShim {
            let runc = try Runc(executable: executable, root: dir + "/root", logger: .init(label: "cf-like.shim-test"))
            return try ContainerShim(runc: runc, logger: .init(label: "cf-like.shim-test"))
        }

        /// Kills whatever stand-in process is left and removes the directory.
        func remove() {
            for name in ["hung.pid", "init.pid"] {
                if let pid = pid(name) { kill(pid, SIGKILL) }
            }
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// Polls until `pid` has exited: gone, or a zombie waiting for whoever inherited it.
    static func waitGone(_ pid: Int32, timeout: Duration = .seconds(20)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/stat") else { return true }
            let stat = String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
            try? handle.close()
            if let end = stat.lastIndex(of: ")"), stat[stat.index(after: end)...].dropFirst().first == "Z" { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test("a failing runc run is reported with runc's words, after the container it left was deleted")
    func runFails() async throws {
        try #require(ContainerShim.locate() != nil, "cf-like-shim must be built next to the test bundle")
        let fake = try FakeRunc(mode: "runfails")
        defer { fake.remove() }
        let state = fake.dir + "/state"
        let error = await #expect(throws: ContainerError.self) {
            _ = try await fake.shim().launch(id: "fake-1", bundle: fake.dir, stateDir: state)
        }
        #expect(error?.kind == .commandFailed)
        #expect(error?.message.contains("runc run exited 1: cannot start container: boom") == true, "\(String(describing: error))")
        #expect(fake.calls == ["run", "delete"])
        // The stand-in container init was re-parented to the shim, killed by delete and reaped
        // by the shim before it answered: no zombie is left for anyone else.
        let initPID = try #require(fake.pid("init.pid"))
        #expect(kill(initPID, 0) == -1 && errno == ESRCH, "container init \(initPID) still exists")
        let shimPID = try #require(ContainerShim.shimPID(stateDir: state))
        #expect(try await Self.waitGone(shimPID))
        #expect(ContainerShim.exit(stateDir: state) == nil)
    }

    @Test("a launch that outlasts its timeout kills the shim with the runc it waits for, then deletes the container")
    func launchTimeout() async throws {
        try #require(ContainerShim.locate() != nil, "cf-like-shim must be built next to the test bundle")
        let fake = try FakeRunc(mode: "hang")
        defer { fake.remove() }
        let state = fake.dir + "/state"
        let began = ContinuousClock.now
        let error = await #expect(throws: ContainerError.self) {
            _ = try await fake.shim().launch(id: "fake-2", bundle: fake.dir, stateDir: state, timeout: .seconds(1))
        }
        #expect(ContinuousClock.now - began < .seconds(10))
        #expect(error?.kind == .timeout, "\(String(describing: error))")
        #expect(error?.message.contains("did not start within") == true)
        let hung = try #require(fake.pid("hung.pid"))
        #expect(try await Self.waitGone(hung), "the hung runc run was left running")
        let shimPID = try #require(ContainerShim.shimPID(stateDir: state))
        #expect(try await Self.waitGone(shimPID))
        #expect(!ContainerShim.shimAlive(stateDir: state))
        #expect(fake.calls == ["run", "delete"])
    }
}
