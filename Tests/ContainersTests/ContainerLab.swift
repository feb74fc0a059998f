import Foundation
import Logging
import Testing

@testable import Containers

/// One integration test's private world: a directory under /tmp with a skeleton, an app layer,
/// an overlay root filesystem, a bundle, log files and its own runc state directory, so
/// nothing here can touch another container on the host.
final class ContainerLab: Sendable {
    let id: String
    let base: String
    let runc: Runc
    let overlay: OverlayMount
    let cgroupPath: String
    let stdio: ContainerStdio

    var bundlePath: String { base + "/bundle" }
    var upperDir: String { base + "/upper" }

    /// Fails (not skips) the test when it cannot run: these tests need root and runc.
    static func requireRootAndRunc() throws {
        try #require(getuid() == 0, "integration tests need root")
        try #require(Runc.locate() != nil, "integration tests need runc on PATH, /usr/sbin or /usr/bin")
    }

    /// Runs `body` with a fresh lab and removes everything afterwards, whatever happens.
    static func with<T>(_ name: String, _ body: (ContainerLab) async throws -> T) async throws -> T {
        try requireRootAndRunc()
        let lab = try ContainerLab(name: name)
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
        id = "cflt-\(name)-\(suffix)"
        base = "/tmp/cf-like-containers-test/\(id)"
        cgroupPath = "/cf-like-test/\(id)"
        var logger = Logger(label: "cf-like.containers-test")
        logger.logLevel = .info
        runc = try Runc(root: base + "/runc-state", log: base + "/runc.log", logFormat: "json", logger: logger)
        stdio = ContainerStdio(stdout: base + "/stdout.log", stderr: base + "/stderr.log")
        overlay = OverlayMount(
            lowerDirs: [base + "/app", base + "/skeleton"], upperDir: base + "/upper", workDir: base + "/work", target: base + "/rootfs")

        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try HostStack(hostname: id).buildSkeleton(at: base + "/skeleton")
        // The app layer: a tiny script at /home/vcap/app, owned by vcap as a droplet would be.
        let app = base + "/app/home/vcap/app"
        try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
        try Data("#!/bin/bash\necho app=ran\n".utf8).write(to: URL(fileURLWithPath: app + "/run.sh"))
        for path in [base + "/app/home/vcap", app, app + "/run.sh"] {
            #expect(chown(path, 2000, 2000) == 0)
        }
        try overlay.mount()
    }

    /// The secure spec for `script` run by bash as vcap, with the stack's read-only mounts.
    func spec(_ script: String, limits: SecureSpec.Limits = .init(memoryBytes: 128 << 20, cpuShares: 128, pids: 256)) throws -> Spec {
        let secure = SecureSpec(
            args: ["/bin/bash", "-c", script],
            env: ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/vcap", "LANG=C.UTF-8"],
            cwd: "/home/vcap/app",
            rootfsPath: overlay.target,
            hostname: id,
            limits: limits,
            extraMounts: HostStack().readOnlyMounts(),
            cgroupsPath: cgroupPath
        )
        return try secure.makeSpec()
    }

    /// Writes the bundle and starts the container detached.
    func run(_ script: String, limits: SecureSpec.Limits = .init(memoryBytes: 128 << 20, cpuShares: 128, pids: 256)) async throws {
        try OCIBundle.create(at: bundlePath, spec: spec(script, limits: limits))
        try await runc.runDetached(id: id, bundle: bundlePath, pidFile: base + "/pid", stdio: stdio)
    }

    /// Polls `runc state` until the container has stopped.
    func waitStopped(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await runc.state(id: id).status == .stopped { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("container \(id) did not stop within \(timeout); stderr: \(stderrText)")
        throw ContainerError(.timeout, "container did not stop")
    }

    /// Polls the stdout file until it contains `marker`.
    func waitForOutput(_ marker: String, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stdoutText.contains(marker) { return stdoutText }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no \(marker) in stdout within \(timeout); stdout: \(stdoutText) stderr: \(stderrText)")
        throw ContainerError(.timeout, "no output")
    }

    var stdoutText: String { (try? String(contentsOfFile: stdio.stdout, encoding: .utf8)) ?? "" }
    var stderrText: String { (try? String(contentsOfFile: stdio.stderr, encoding: .utf8)) ?? "" }

    /// `key=value` lines of stdout.
    var report: [String: String] {
        var values: [String: String] = [:]
        for line in stdoutText.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return values
    }

    /// Deletes the container, unmounts the overlay and removes the directory.
    func cleanup() async throws {
        if (try? await runc.state(id: id)) != nil {
            try await runc.delete(id: id, force: true)
        }
        try overlay.unmount()
        // Never delete through a live mount.
        if let mounted = try MountTable.current().first(where: { $0.hasPrefix(base) }) {
            throw ContainerError(.invalidArgument, "\(mounted) still mounted; not removing \(base)")
        }
        try FileManager.default.removeItem(atPath: base)
        // runc removes the container's cgroup but not the shared parent; drop it once empty
        // (rmdir fails harmlessly while another test's cgroup is still inside).
        for hierarchy in ["memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "systemd", "unified"] {
            _ = rmdir("/sys/fs/cgroup/\(hierarchy)/cf-like-test")
        }
    }
}
