import Foundation
import Logging
import Testing

@testable import Containers

/// One shim test's private world (after ContainerLab): a directory under /tmp with a stack
/// skeleton, an app layer, an overlay root filesystem, a bundle, its own runc state directory
/// and cgroup parent, and one shim state directory per container it starts.
final class ShimLab: Sendable {
    let name: String
    let base: String
    let runc: Runc
    let overlay: OverlayMount
    /// Every container of this lab lives under this cgroup parent.
    let cgroupParent: String
    let logger: Logger

    /// The bundle directory of container `id` (each has its own config and cgroup).
    func bundle(_ id: String) -> String { base + "/bundles/" + id }
    /// The container's /home/vcap/app as the host sees it (through the overlay).
    var appDir: String { overlay.target + "/home/vcap/app" }

    /// Fails (not skips) the test when it cannot run: these tests need root, runc and the shim.
    static func requirements() throws {
        try #require(getuid() == 0, "shim integration tests need root")
        try #require(Runc.locate() != nil, "shim integration tests need runc on PATH, /usr/sbin or /usr/bin")
        try #require(ContainerShim.locate() != nil, "cf-like-shim must be built next to the test bundle (swift build --build-tests)")
    }

    /// Runs `body` with a fresh lab and removes everything afterwards, whatever happens.
    static func with<T>(_ name: String, _ body: (ShimLab) async throws -> T) async throws -> T {
        try requirements()
        let lab = try ShimLab(name: name)
        do {
            let result = try await body(lab)
            try await lab.cleanup()
            return result
        } catch {
            try? await lab.cleanup()
            throw error
        }
    }

    init(name: String) throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        self.name = "cfls-\(name)-\(suffix)"
        base = "/tmp/cf-like-shim-test/\(self.name)"
        cgroupParent = "/cf-like-shim-test/\(self.name)"
        var logger = Logger(label: "cf-like.shim-test")
        logger.logLevel = .info
        self.logger = logger
        runc = try Runc(root: base + "/runc-state", log: base + "/runc.log", logFormat: "json", logger: logger)
        overlay = OverlayMount(
            lowerDirs: [base + "/app", base + "/skeleton"], upperDir: base + "/upper", workDir: base + "/work", target: base + "/rootfs")

        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try HostStack(hostname: self.name).buildSkeleton(at: base + "/skeleton")
        let app = base + "/app/home/vcap/app"
        try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
        for path in [base + "/app/home/vcap", app] {
            #expect(chown(path, 2000, 2000) == 0)
        }
        try overlay.mount()
    }

    /// A shim launcher with this lab's runc and the given log settings.
    func shim(logMaxBytes: Int = 8 << 20, linesPerSecond: Int = 1000, burst: Int = 2000) throws -> ContainerShim {
        try ContainerShim(runc: runc, logMaxBytes: logMaxBytes, linesPerSecond: linesPerSecond, burst: burst, logger: logger)
    }

    /// The container id of the lab's `index`th container.
    func id(_ index: Int) -> String { "\(name)-\(index)" }

    /// The shim state directory of container `id`.
    func stateDir(_ id: String) -> String { base + "/state/" + id }

    /// The cgroup path of container `id`.
    func cgroupPath(_ id: String) -> String { cgroupParent + "/" + id }

    /// The secure spec for `args` run as vcap, with the stack's read-only mounts.
    func spec(args: [String], id: String, memoryBytes: Int64 = 128 << 20) throws -> Spec {
        let secure = SecureSpec(
            args: args,
            env: ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/vcap", "LANG=C.UTF-8"],
            cwd: "/home/vcap/app",
            rootfsPath: overlay.target,
            hostname: name,
            limits: .init(memoryBytes: memoryBytes, cpuShares: 128, pids: 256),
            extraMounts: HostStack().readOnlyMounts(),
            cgroupsPath: cgroupPath(id)
        )
        return try secure.makeSpec()
    }

    /// Writes the bundle for `script` (run by bash) and launches container `id` under a shim.
    func launch(
        _ script: String, id: String, shim: ContainerShim? = nil, memoryBytes: Int64 = 128 << 20
    ) async throws -> ShimStarted {
        try OCIBundle.create(at: bundle(id), spec: spec(args: ["/bin/bash", "-c", script], id: id, memoryBytes: memoryBytes))
        return try await (shim ?? self.shim()).launch(id: id, bundle: bundle(id), stateDir: stateDir(id))
    }

    /// Polls the shim's `exit` file.
    func waitForExit(_ id: String, timeout: Duration = .seconds(30)) async throws -> ContainerExit {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let exit = ContainerShim.exit(stateDir: stateDir(id)) { return exit }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("no exit file for \(id) within \(timeout); log: \(logText(id))")
        throw ContainerError(.timeout, "container \(id) did not exit")
    }

    /// Polls until the shim of `id` has gone.
    func waitForShimGone(_ id: String, timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !ContainerShim.shimAlive(stateDir: stateDir(id)) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("shim of \(id) still running after \(timeout)")
    }

    /// Every record on disk for `id`, oldest first.
    func records(_ id: String) throws -> [ShimLogRecord] {
        var reader = ShimLogReader(stateDir: stateDir(id))
        var all: [ShimLogRecord] = []
        while true {
            let batch = try reader.read(maxRecords: 10_000)
            if batch.isEmpty { return all }
            all += batch
        }
    }

    /// `log.1` and `log` as text, for failure messages.
    func logText(_ id: String) -> String {
        [ShimStateDirectory.rotatedLog, ShimStateDirectory.log, ShimStateDirectory.shimLog].map { file in
            let text = (try? String(contentsOfFile: stateDir(id) + "/" + file, encoding: .utf8)) ?? ""
            return "[\(file)] " + String(text.suffix(2000))
        }.joined(separator: "\n")
    }

    /// Kills any shim still running, deletes every container, unmounts, removes the directory
    /// and this lab's cgroup parent.
    func cleanup() async throws {
        let stateRoot = base + "/state"
        for id in (try? FileManager.default.contentsOfDirectory(atPath: stateRoot)) ?? [] {
            let dir = stateRoot + "/" + id
            if ContainerShim.shimAlive(stateDir: dir), let pid = ContainerShim.shimPID(stateDir: dir) {
                kill(pid, SIGKILL)
            }
        }
        for container in (try? await runc.list()) ?? [] {
            try await runc.delete(id: container.id, force: true)
        }
        try overlay.unmount()
        if let mounted = try MountTable.current().first(where: { $0.hasPrefix(base) }) {
            throw ContainerError(.invalidArgument, "\(mounted) still mounted; not removing \(base)")
        }
        try FileManager.default.removeItem(atPath: base)
        for hierarchy in ["memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "systemd", "unified"] {
            _ = rmdir("/sys/fs/cgroup/\(hierarchy)\(cgroupParent)")
            // The shared parent goes once no other shim test uses it.
            _ = rmdir("/sys/fs/cgroup/\(hierarchy)/cf-like-shim-test")
        }
        _ = rmdir("/tmp/cf-like-shim-test")
    }

    /// Percentile by nearest rank of sorted samples, in milliseconds.
    static func percentileMilliseconds(_ sorted: [Duration], _ percentile: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = max(1, Int((percentile / 100 * Double(sorted.count)).rounded(.up)))
        let value = sorted[min(rank, sorted.count) - 1]
        return Double(value.components.seconds) * 1000 + Double(value.components.attoseconds) / 1e15
    }
}
