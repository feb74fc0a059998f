import Containers
import Foundation
import Logging
import PlatformModels
import Synchronization
import Testing

@testable import ExecutionAgent

/// Faults around a container's start and stop on real runc, the real shim and real networking
/// (as root): a runc that never exits, a shim killed in the middle of a start, a crash during a
/// stop, fifty crashes at once. Each case ends in a stable state within a bound, `converge(to:)`
/// always returns, and nothing of an instance outlives it (container, mount, cgroup, network,
/// process). Waits are generous for a loaded two-core machine; what is asserted is the outcome,
/// the reason and what is left behind, never how fast it went.
@Suite(.serialized, .timeLimit(.minutes(10))) struct AgentFaultTests {
    @Test func aRuncThatNeverExitsFailsTheStartAfterTheTimeoutAndLeavesNothingBehind() async throws {
        let runc = try FakeRunc(.hang)
        defer { runc.remove() }
        // One start slot: the instance after the hung one starts only if the slot came back.
        try await AgentLab.with("fault-hang", slot: 7, extraConfig: """
            runc: \(runc.path)
            container_start_timeout_seconds: 5
            parallel_starts: 1
            """) { lab in
            #expect(lab.config.containerStartTimeoutSeconds == 5)
            let hung = lab.assignment(command: "sleep 600", health: HealthCheckSpec(type: .process))
            let ended = lab.agent.expectEvent { $0.instanceGUID == hung.instanceGUID }
            try runc.arm()
            let began = ContinuousClock.now
            try await boundedConverge(lab, to: [hung])
            let event = try await ended.wait(timeout: .seconds(120))
            let took = ContinuousClock.now - began
            #expect(runc.faulted(hung), "the fake runc never saw the container's create")
            #expect(event.type == .failed, "\(event)")
            #expect(event.reason.hasPrefix("failed to start: timeout: container cfl-\(hung.instanceGUID) did not start within 5"),
                    "\(event.reason)")
            #expect(event.reason.contains("its shim was killed"), "\(event.reason)")
            // The shim, the hung runc it waited for, the overlay, the network and the cgroup are gone.
            let left = try await settledLeftovers(of: hung, in: lab)
            #expect(left.isEmpty, "left behind: \(left)")
            let network = try networkLeftovers(lab)
            #expect(network.isEmpty, "left behind: \(network)")
            let report = try #require(await lab.agent.reports().first { $0.instanceGUID == hung.instanceGUID })
            #expect(report.state == .crashed && report.hostPort == nil && report.details == event.reason)

            // The real runc again: the next instance gets the one start slot and runs.
            runc.disarm()
            let next = lab.assignment(index: 1)
            let running = try await lab.start(next, also: [hung])
            #expect(running.state == .running)
            print("AgentFaultTests: hung runc failed after \(took), the next instance ran")
        }
    }

    @Test func aShimKilledMidStartFailsTheInstanceAndGivesTheStartSlotBack() async throws {
        let runc = try FakeRunc(.delay(seconds: 2))
        defer { runc.remove() }
        try await AgentLab.with("fault-shim", slot: 8, extraConfig: """
            runc: \(runc.path)
            parallel_starts: 1
            """) { lab in
            let victim = lab.assignment(command: "sleep 600", health: HealthCheckSpec(type: .process))
            let stateDir = lab.instanceDirectory(victim.instanceGUID) + "/shim"
            let ended = lab.agent.expectEvent { $0.instanceGUID == victim.instanceGUID }
            try runc.arm()
            try await boundedConverge(lab, to: [victim])

            // The shim's daemon (it wrote shim.pid and leads its own session), killed while it
            // waits for the delayed `runc run` it started. Watched from a thread of its own: a
            // full test run keeps the task pool busy, and the 2 s window must not pass unseen.
            let containerID = "cfl-" + victim.instanceGUID
            let killed = await onOwnThread { () -> (shim: Int32, late: Bool)? in
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline {
                    if let pid = ContainerShim.shimPID(stateDir: stateDir), ContainerShim.shimAlive(stateDir: stateDir),
                       HostProcess.all().contains(where: { $0.parent == pid && $0.arguments.contains("run")
                                                           && $0.arguments.contains(containerID) }) {
                        kill(pid, SIGKILL)
                        return (pid, runc.proceeded(victim))
                    }
                    usleep(10_000)
                }
                return nil
            }
            let (shimPID, killedLate) = try #require(killed, "the shim never waited for runc run")
            let killedAt = ContinuousClock.now
            #expect(!killedLate, "the shim \(shimPID) was killed only after the fake's delay: not mid-start")

            // Failed, not crashed: the shim died before it reported the container started, so
            // the start threw and the instance never ran (a crash is an instance that ran and ended).
            let event = try await ended.wait(timeout: .seconds(60))
            let reportedAfter = ContinuousClock.now - killedAt
            #expect(event.type == .failed, "\(event)")
            #expect(event.reason.hasPrefix("failed to start: commandFailed: container cfl-\(victim.instanceGUID) did not start: "),
                    "\(event.reason)")
            #expect(event.reason.contains("before reporting"), "\(event.reason)")
            let left = try await settledLeftovers(of: victim, in: lab)
            #expect(left.isEmpty, "left behind: \(left)")
            // Past the fake's delay: the half-finished start must not have gone on to runc once
            // the failure was reported (it would create a container nobody knows of).
            try await Task.sleep(until: killedAt + .seconds(3))
            #expect(!runc.proceeded(victim), "the dead shim's runc run went on after the instance was failed")
            let late = try await settledLeftovers(of: victim, in: lab)
            #expect(late.isEmpty, "left behind: \(late)")
            let network = try networkLeftovers(lab)
            #expect(network.isEmpty, "left behind: \(network)")

            // The one start slot came back: the next instance starts (real runc) and runs.
            runc.disarm()
            let next = lab.assignment(index: 1)
            let running = try await lab.start(next, also: [victim])
            #expect(running.state == .running)
            print("AgentFaultTests: killed shim reported failed after \(reportedAfter), the next instance ran")
        }
    }

    @Test func aCrashDuringAStopIsReportedAsTheStopAlone() async throws {
        try await AgentLab.with("fault-stopcrash", slot: 9, extraConfig: "stop_grace_seconds: 5") { lab in
            // The app does not stop on SIGTERM and ends by itself 2 s later, inside the 5 s grace
            // period. Its end is timed from the TERM rather than from its start, so a slow start on
            // a loaded machine cannot make it end before the stop begins.
            let app = lab.assignment(command: "trap 'sleep 2; exit 1' TERM; while true; do sleep 0.1; done",
                                     health: HealthCheckSpec(type: .process))
            let events = EventRecorder(lab.agent)
            let report = try await lab.start(app)
            #expect(report.state == .running)
            let directory = lab.instanceDirectory(app.instanceGUID)
            let stopped = lab.agent.expectEvent { $0.instanceGUID == app.instanceGUID && $0.type == .stopped }
            let stopBegan = ContinuousClock.now
            try await boundedConverge(lab, to: [])
            let stop = try await stopped.wait(timeout: .seconds(60))
            let stoppedAfter = ContinuousClock.now - stopBegan
            // Its own status 1: neither TERM's 143 nor the 137 of a SIGKILL after the grace period.
            #expect(stop.exitStatus == 1, "\(stop)")
            // The exit loop runs every 200 ms: give it time to (wrongly) see the exit as a crash.
            try await Task.sleep(for: .seconds(1))
            let seen = events.of(app.instanceGUID).map(\.type)
            #expect(seen.filter { $0 == .stopped }.count == 1, "\(seen)")
            #expect(!seen.contains(.crashed) && !seen.contains(.failed), "\(seen)")
            #expect(await lab.agent.reports().isEmpty)
            #expect(!FileManager.default.fileExists(atPath: directory))
            let cell = lab.logs.all.filter { $0.appGUID == app.appGUID && $0.sourceType == "CELL" }.map(\.message)
            #expect(!cell.contains { $0.contains("SIGKILL") || $0.hasPrefix("Exited") }, "\(cell)")
            let left = try await settledLeftovers(of: app, in: lab)
            #expect(left.isEmpty, "left behind: \(left)")
            let network = try networkLeftovers(lab)
            #expect(network.isEmpty, "left behind: \(network)")
            print("AgentFaultTests: crash during the stop reported as stopped (status 1) after \(stoppedAfter)")
        }
    }

    @Test func fiftyInstancesStartedAndCrashedAtOnceAllEndCrashedAndAreRemovedAfterwards() async throws {
        try await AgentLab.with("fault-fifty", slot: 10) { lab in
            let assignments = (0..<50).map { i in
                lab.assignment(index: i, memoryMB: 32 + i % 33, command: "sleep 1; exit 3", health: HealthCheckSpec(type: .process))
            }
            let guids = Set(assignments.map(\.instanceGUID))
            let events = EventRecorder(lab.agent)
            let began = ContinuousClock.now
            try await boundedConverge(lab, to: assignments)
            let converged = ContinuousClock.now - began
            // converge only launched the starts: with four start slots they cannot all be done yet.
            let atReturn = await lab.agent.reports()
            #expect(atReturn.count == 50)
            #expect(atReturn.contains { $0.state == .starting }, "converge waited for every start")

            try await eventually(timeout: .seconds(120)) {
                Set(events.all.filter { $0.type == .crashed || $0.type == .failed }.map(\.instanceGUID)) == guids
            }
            let crashedIn = ContinuousClock.now - began
            let endings = events.all.filter { $0.type == .crashed || $0.type == .failed }
            #expect(endings.count == 50, "one ending per instance")
            #expect(endings.allSatisfy { $0.type == .crashed && $0.exitStatus == 3 && $0.reason == "exited with status 3" && $0.crashCount == 1 },
                    "\(endings.filter { $0.type != .crashed || $0.exitStatus != 3 })")
            let reports = await lab.agent.reports()
            #expect(reports.count == 50 && reports.allSatisfy { $0.state == .crashed && $0.hostPort == nil })
            // A crashed instance's container goes right after its crash event.
            let runc = try realRunc(lab)
            try await eventually(timeout: .seconds(60)) { try await runc.list().isEmpty }

            try await boundedConverge(lab, to: [])
            try await eventually(timeout: .seconds(120)) {
                Set(events.all.filter { $0.type == .stopped }.map(\.instanceGUID)) == guids
            }
            #expect(await lab.agent.reports().isEmpty)
            #expect(try await runc.list().isEmpty)
            let instances = (try? FileManager.default.contentsOfDirectory(atPath: lab.config.stateDirectory + "/instances")) ?? ["?"]
            #expect(instances.isEmpty, "instance directories left: \(instances.count)")
            #expect(try MountTable.current().filter { $0.hasPrefix(lab.base) }.isEmpty)
            let network = try networkLeftovers(lab)
            #expect(network.isEmpty, "left behind: \(network)")
            print("AgentFaultTests: 50 instances: converge returned after \(converged), all crashed after \(crashedIn)")
        }
    }
}

// MARK: Helpers

/// `converge(to:)`, which must return within `limit` (it only launches starts and stops): a
/// converge that waited on a start would wedge the agent's assignment loop. The call runs in a
/// task of its own so that a hung one fails the test instead of hanging the run.
private func boundedConverge(_ lab: AgentLab, to desired: [InstanceAssignment], within limit: Duration = .seconds(60),
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let agent = lab.agent
    let returned = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
        let once = ResumeOnce(continuation)
        let timer = Task { try? await Task.sleep(for: limit); once.resume(false) }
        Task {
            await agent.converge(to: desired)
            once.resume(true)
            timer.cancel()
        }
    }
    guard returned else {
        Issue.record("converge(to:) did not return within \(limit)", sourceLocation: sourceLocation)
        throw CancellationError()
    }
}

/// `body`'s result, computed on a thread of its own rather than in the task pool.
private func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// Resumes a continuation once, whoever comes first.
private final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Bool, Never>?>
    init(_ continuation: CheckedContinuation<Bool, Never>) { self.continuation = Mutex(continuation) }
    func resume(_ value: Bool) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}

/// Every event the agent emits from now on: an expectation that never matches sees them all.
private final class EventRecorder: Sendable {
    private let events = Mutex<[InstanceEvent]>([])

    init(_ agent: ExecutionAgent) {
        _ = agent.expectEvent { [self] event in
            events.withLock { $0.append(event) }
            return false
        }
    }

    var all: [InstanceEvent] { events.withLock { $0 } }
    func of(_ guid: String) -> [InstanceEvent] { all.filter { $0.instanceGUID == guid } }
}

/// The real runc on the lab's runc root (the lab's agent may run a fake one).
private func realRunc(_ lab: AgentLab) throws -> Runc {
    try Runc(executable: Runc.locate(), root: lab.config.stateDirectory + "/runc", logger: Logger(label: "cf-like.fault-test"))
}

/// What is left on the host of `assignment`'s instance: its runc container, mounts under its
/// directory, its cgroup, and live processes naming its container or directory. Processes a
/// SIGKILL has just hit take a moment to go, so this waits up to 5 s for the list to empty.
private func settledLeftovers(of assignment: InstanceAssignment, in lab: AgentLab) async throws -> [String] {
    let id = "cfl-" + assignment.instanceGUID
    let directory = lab.instanceDirectory(assignment.instanceGUID)
    let runc = try realRunc(lab)
    let deadline = ContinuousClock.now + .seconds(5)
    while true {
        var left: [String] = []
        for container in try await runc.list() where container.id == id {
            left.append("runc container \(id) (\(container.status.rawValue))")
        }
        for mount in try MountTable.current() where mount.hasPrefix(directory) { left.append("mount \(mount)") }
        if CgroupReader().exists(cgroupPath: lab.cgroupPath(assignment.instanceGUID)) {
            left.append("cgroup \(lab.cgroupPath(assignment.instanceGUID))")
        }
        for process in HostProcess.all() where process.arguments.contains(where: { $0.contains(id) || $0.contains(directory) }) {
            left.append("process \(process)")
        }
        if left.isEmpty || ContinuousClock.now >= deadline { return left }
        try await Task.sleep(for: .milliseconds(100))
    }
}

/// The lab's network namespaces, interfaces and nftables elements still on the host (none once
/// no instance runs).
private func networkLeftovers(_ lab: AgentLab) throws -> [String] {
    let prefix = lab.config.interfacePrefix
    let namespaces = try AgentLab.run("/usr/sbin/ip", ["netns", "list"]).split(separator: "\n").filter { $0.contains(prefix) }
    let links = try AgentLab.run("/usr/sbin/ip", ["-o", "link"]).split(separator: "\n").filter { $0.contains(prefix) }
    var left = (namespaces + links).map { String($0) }
    for (kind, name) in [("set", "ifaces"), ("map", "hostports")] {
        let listing = try AgentLab.run("/usr/sbin/nft", ["list", kind, "inet", lab.config.nftablesTable, name])
        if listing.contains("elements") { left.append("nftables \(kind) \(name): \(listing)") }
    }
    return left
}

/// A process as /proc shows it.
private struct HostProcess: CustomStringConvertible {
    var pid: Int32
    var parent: Int32
    var arguments: [String]

    var description: String { "\(pid) (parent \(parent)): \(arguments.joined(separator: " "))" }

    /// Every live process; zombies (no command line) are left out.
    static func all() -> [HostProcess] {
        var found: [HostProcess] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name),
                  let stat = read("/proc/\(name)/stat").map({ String(decoding: $0, as: UTF8.self) }),
                  let nameEnd = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
            guard fields.count > 2, fields[0] != "Z", fields[0] != "X", let parent = Int32(fields[1]),
                  let cmdline = read("/proc/\(name)/cmdline"), !cmdline.isEmpty
            else { continue }
            found.append(HostProcess(pid: pid, parent: parent,
                                     arguments: cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }))
        }
        return found
    }

    /// /proc files report size 0: read through a handle.
    private static func read(_ path: String) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return try? handle.read(upToCount: 64 << 10)
    }
}

/// A runc for fault tests: a bash script that runs the real runc, except that while it is armed
/// `create` and `run` misbehave first: `.hang` never exits (it becomes a `sleep` named after the
/// container), `.delay` sleeps, then notes that it proceeded and runs the real runc.
private final class FakeRunc: Sendable {
    enum Fault: Sendable {
        case hang
        case delay(seconds: Int)
    }

    let directory: String
    var path: String { directory + "/runc" }
    private var flag: String { directory + "/armed" }

    init(_ fault: Fault) throws {
        let real = try #require(Runc.locate(), "fault tests need runc")
        directory = "/tmp/cf-like-agent-test/fake-runc-" + String(UUID().uuidString.prefix(8)).lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let misbehave: String
        switch fault {
        case .hang:
            misbehave = #"exec -a "fake-runc-hang-$id" sleep 100000"#
        case .delay(let seconds):
            misbehave = #"sleep \#(seconds); touch "$dir/proceeded-$id""#
        }
        let script = #"""
            #!/bin/bash
            # Fault-test runc: the real one, but while armed create and run misbehave first.
            dir='\#(directory)'
            args=("$@")
            i=0
            while [ "$i" -lt "${#args[@]}" ]; do
              case "${args[$i]}" in
                --root|--log|--log-format|--criu|--rootless) i=$((i + 2)) ;;
                -*) i=$((i + 1)) ;;
                *) break ;;
              esac
            done
            command="${args[$i]}"
            id="${args[${#args[@]} - 1]}"
            if [ -e "$dir/armed" ] && { [ "$command" = create ] || [ "$command" = run ]; }; then
              echo "$id" >> "$dir/faulted"
              \#(misbehave)
            fi
            exec '\#(real)' "$@"

            """#
        try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
    }

    /// From now on `create` and `run` misbehave.
    func arm() throws { try Data().write(to: URL(fileURLWithPath: flag)) }
    /// From now on every subcommand is the real runc's.
    func disarm() { try? FileManager.default.removeItem(atPath: flag) }

    /// Whether a create or run of `assignment`'s container met the fault.
    func faulted(_ assignment: InstanceAssignment) -> Bool {
        let text = (try? String(contentsOfFile: directory + "/faulted", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").contains { $0 == "cfl-" + assignment.instanceGUID }
    }

    /// Whether a delayed create of `assignment`'s container went on to the real runc.
    func proceeded(_ assignment: InstanceAssignment) -> Bool {
        FileManager.default.fileExists(atPath: directory + "/proceeded-cfl-" + assignment.instanceGUID)
    }

    /// Kills what the fake may have left running (when a test found something left behind)
    /// and removes it.
    func remove() {
        let text = (try? String(contentsOfFile: directory + "/faulted", encoding: .utf8)) ?? ""
        let hung = Set(text.split(separator: "\n").map { "fake-runc-hang-" + $0 })
        for process in HostProcess.all() where process.arguments.contains(path) || hung.contains(process.arguments[0]) {
            kill(process.pid, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
