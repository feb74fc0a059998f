import Containers
import Foundation
import Logging
import NIOPosix
import PlatformClient
import PlatformModels
import Testing

@testable import Stager

/// One staging test's private world: state directory, subnet, ports, nftables table and
/// interface prefix of its own, plus local git repositories for buildpacks. Subnets come from
/// 10.241.0.0/16, which no other suite uses (the network tests pick from 10.200–239, 10.251
/// and 10.253; the agent's from 10.252).
final class StagerLab: Sendable {
    let base: String
    let stager: Stager
    let host: StagingHost
    let logs = Lines()

    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [LogLine] = []
        func append(_ more: [LogLine]) { lock.lock(); lines += more; lock.unlock() }
        var all: [LogLine] { lock.lock(); defer { lock.unlock() }; return lines }
        var text: String { all.map(\.message).joined(separator: "\n") }
    }

    static let threadPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    static func requirements() throws {
        try #require(getuid() == 0, "staging tests need root")
        try #require(Runc.locate() != nil, "staging tests need runc")
        try #require(ContainerShim.locate() != nil, "staging tests need cf-like-shim beside the test binary (swift build --build-tests)")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/git"), "staging tests need git to make buildpack repositories")
    }

    static func with<T>(_ name: String, slot: Int, _ body: (StagerLab) async throws -> T) async throws -> T {
        try requirements()
        let lab = try await StagerLab(name: name, slot: slot)
        do {
            let result = try await body(lab)
            await lab.shutdown()
            return result
        } catch {
            await lab.shutdown()
            throw error
        }
    }

    private init(name: String, slot: Int) async throws {
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        base = "/tmp/cf-like-stager-test/\(name)-\(suffix)"
        try FileManager.default.createDirectory(atPath: base + "/repos", withIntermediateDirectories: true)
        try Data("test-internal-credential-0123456789".utf8).write(to: URL(fileURLWithPath: base + "/credential"))
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let yaml = """
            controller:
              internal_credential_file: \(base)/credential
            stager:
              stager_id: test-\(name)-\(suffix)
              state_dir: \(base)/state
              subnet: 10.241.\(slot).0/24
              host_port_min: \(43000 + slot * 64)
              host_port_max: \(43000 + slot * 64 + 63)
              nftables_table: cflst_\(name.replacingOccurrences(of: "-", with: "_"))_\(suffix)
              interface_prefix: cs\(letters[slot % 26])
              pids_limit: 256
            """
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: base + "/config.yaml"))
        let config = try StagerConfig(document: ConfigDocument(path: base + "/config.yaml"))
        var logger = Logger(label: "cf-like.stager-test")
        logger.logLevel = .warning
        // Never contacted: these tests drive the staging host directly.
        let client = ComponentClient(api: "http://127.0.0.1:9", credential: "unused", component: "stager-test")
        stager = try Stager(config: config, client: client, threadPool: Self.threadPool, logger: logger)
        host = stager.host
        try await stager.prepare()
    }

    func shutdown() async {
        try? await stager.teardownNetwork()
        // runc removes each container's own cgroup; the stager removes the parent they shared.
        let left = CgroupParent("/cflike/\(await stager.config.stagerID)").candidates
            .filter { FileManager.default.fileExists(atPath: $0) }
        #expect(left.isEmpty, "the stager's cgroup parent is left: \(left)")
        try? FileManager.default.removeItem(atPath: base)
    }

    // MARK: Fixtures

    /// A git repository (committed) holding `files` (path → content; scripts under bin/ are
    /// made executable); returns its `file://` URL.
    func repository(_ name: String, _ files: [String: String]) throws -> String {
        let dir = base + "/repos/" + name
        for (path, content) in files {
            let file = dir + "/" + path
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(content.utf8).write(to: URL(fileURLWithPath: file))
            if path.hasPrefix("bin/") { chmod(file, 0o755) }
        }
        try Self.run(["/usr/bin/git", "init", "-q", "-b", "main", dir])
        try Self.run(["/usr/bin/git", "-C", dir, "add", "-A"])
        try Self.run(["/usr/bin/git", "-C", dir, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "buildpack"])
        return "file://" + dir
    }

    /// A package: `files` (path → content) as a tar.gz; `links` are symlinks (path → target).
    func package(_ files: [String: String], links: [String: String] = [:]) throws -> String {
        let dir = base + "/pkg-" + UUID().uuidString
        for (path, content) in files {
            let file = dir + "/" + path
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(content.utf8).write(to: URL(fileURLWithPath: file))
        }
        for (path, target) in links {
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + path, withDestinationPath: target)
        }
        let out = dir + ".tgz"
        try Self.run(["/usr/bin/tar", "-C", dir, "-czf", out, "."])
        return out
    }

    static func buildpack(_ url: String, name: String? = nil) -> StagingBuildpack {
        StagingBuildpack(name: name, url: url, displayURL: url, trusted: true)
    }

    func job(_ buildpacks: [StagingBuildpack], detect: Bool = true, env: [String: String] = [:], timeout: Int = 120,
             memoryMB: Int = 512, diskMB: Int = 1024, command: String? = nil) -> StagingJob {
        StagingJob(buildGUID: UUID().uuidString.lowercased(), appGUID: "0a000000-0000-4000-8000-000000000001", appName: "app",
                   spaceGUID: "0a000000-0000-4000-8000-000000000002", spaceName: "dev", organizationGUID: "0a000000-0000-4000-8000-000000000003",
                   organizationName: "org", stack: "cflike-host", packageSHA256: "", cacheSHA256: nil, buildpacks: buildpacks,
                   detect: detect, environment: env, startCommand: command, memoryMB: memoryMB, diskMB: diskMB, timeoutSeconds: timeout)
    }

    /// Stages and keeps the droplet (extracted under `<base>/droplet-<build>`) until the lab ends.
    func stage(_ job: StagingJob, package: String, cache: String? = nil) async -> (StagingOutcome, String?) {
        let logs = self.logs
        let outcome = await host.stage(job, package: package, cache: cache) { lines in logs.append(lines) }
        var extracted: String?
        var kept = outcome
        if let droplet = outcome.droplet {
            let dir = base + "/droplet-" + job.buildGUID
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            _ = try? Self.run(["/usr/bin/tar", "-C", dir, "-xzf", droplet])
            extracted = dir
            try? FileManager.default.copyItem(atPath: droplet, toPath: dir + ".tgz")
            kept.droplet = dir + ".tgz"
        }
        if let cache = outcome.cache {
            let copy = base + "/cache-" + job.buildGUID + ".tgz"
            try? FileManager.default.copyItem(atPath: cache, toPath: copy)
            kept.cache = copy
        }
        host.forget(job.buildGUID)
        return (kept, extracted)
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestFailure("\(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
