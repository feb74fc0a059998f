import Containers
import Foundation
import Logging
import NIOPosix
import PlatformClient
import PlatformModels

/// `ops/bench/staging`: how long the stager takes to stage a fixture app with warm caches
/// (buildpack checkout cached, the app's build cache restored), beside the time a plain
/// `tar -czf` of the same fixture takes in the same run. No controller is involved: the
/// package is a local file and the droplet stays on disk. Uses its own state directory,
/// subnet, ports and nftables table, all removed at the end.
public enum StagingBenchmark {
    public struct Fixture: Sendable {
        public var name: String
        /// The buildpack's directory (turned into a local git repository).
        public var buildpack: String
        /// The app's directory.
        public var app: String

        public init(name: String, buildpack: String, app: String) {
            self.name = name
            self.buildpack = buildpack
            self.app = app
        }
    }

    public struct Row: Sendable {
        public var fixture: String
        public var stagingMillis: [Double]
        public var tarGzipMillis: [Double]
        public var dropletBytes: Int
    }

    /// Percentile (nearest rank).
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[max(0, min(sorted.count - 1, rank))]
    }

    public static func run(fixtures: [Fixture], runs: Int, workDirectory: String, logger: Logger) async throws -> [Row] {
        let fm = FileManager.default
        try? fm.removeItem(atPath: workDirectory)
        try fm.createDirectory(atPath: workDirectory + "/repos", withIntermediateDirectories: true)
        try Data("benchmark-internal-credential-0123".utf8).write(to: URL(fileURLWithPath: workDirectory + "/credential"))
        let yaml = """
            controller:
              internal_credential_file: \(workDirectory)/credential
            stager:
              stager_id: bench-staging
              state_dir: \(workDirectory)/state
              subnet: 10.250.0.0/24
              host_port_min: 46000
              host_port_max: 46063
              nftables_table: cflike_bench_staging
              interface_prefix: cfz
            """
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: workDirectory + "/config.yaml"))
        let config = try StagerConfig(document: ConfigDocument(path: workDirectory + "/config.yaml"))
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        defer { threadPool.shutdownGracefully { _ in } }
        let client = ComponentClient(api: "http://127.0.0.1:9", credential: "unused", component: "bench")
        let stager = try Stager(config: config, client: client, threadPool: threadPool, logger: logger)
        let host = stager.host
        try await stager.prepare()
        do {
            let rows = try await measure(fixtures: fixtures, runs: runs, workDirectory: workDirectory, host: host)
            try? await stager.teardownNetwork()
            try? fm.removeItem(atPath: workDirectory)
            return rows
        } catch {
            try? await stager.teardownNetwork()
            throw error
        }
    }

    static func measure(fixtures: [Fixture], runs: Int, workDirectory: String, host: StagingHost) async throws -> [Row] {
        let fm = FileManager.default
        var rows: [Row] = []
        for fixture in fixtures {
            let repo = workDirectory + "/repos/" + fixture.name
            try await sh("cp -a '\(fixture.buildpack)' '\(repo)' && rm -rf '\(repo)/fixtures' && git init -q -b main '\(repo)' && git -C '\(repo)' add -A && git -C '\(repo)' -c user.email=b@example.com -c user.name=b commit -q -m bench")
            let package = workDirectory + "/" + fixture.name + ".package.tgz"
            try await sh("tar -C '\(fixture.app)' -czf '\(package)' .")
            let buildpack = StagingBuildpack(name: fixture.name, url: "file://" + repo, displayURL: "file://" + repo, trusted: true)
            var cache: String?
            var staging: [Double] = []
            var tarGzip: [Double] = []
            var dropletBytes = 0
            for run in 0...runs {
                let job = StagingJob(
                    buildGUID: UUID().uuidString.lowercased(), appGUID: UUID().uuidString.lowercased(), appName: fixture.name,
                    spaceGUID: "s", spaceName: "bench", organizationGUID: "o", organizationName: "bench", stack: "cflike-host",
                    packageSHA256: "", cacheSHA256: nil, buildpacks: [buildpack], detect: true, environment: [:], startCommand: nil,
                    memoryMB: 1024, diskMB: 4096, timeoutSeconds: 300)
                let started = ContinuousClock.now
                let lines = LineBuffer()
                let outcome = await host.stage(job, package: package, cache: cache) { lines.append($0) }
                let millis = StagingHost.seconds(ContinuousClock.now - started) * 1000
                guard outcome.result.success != nil else {
                    host.forget(job.buildGUID)
                    throw StagerError("staging \(fixture.name) failed: \(outcome.result.failure?.message ?? "?")\n\(lines.text)")
                }
                let kept = workDirectory + "/" + fixture.name + ".cache.tgz"
                try? fm.removeItem(atPath: kept)
                if let produced = outcome.cache {
                    try fm.copyItem(atPath: produced, toPath: kept)
                    cache = kept
                }
                if let droplet = outcome.droplet {
                    dropletBytes = ((try? fm.attributesOfItem(atPath: droplet)[.size]) as? NSNumber)?.intValue ?? 0
                }
                host.forget(job.buildGUID)
                // The reference: the same fixture through tar and gzip, nothing else.
                let reference = workDirectory + "/reference.tgz"
                let tarStarted = ContinuousClock.now
                try await sh("tar -C '\(fixture.app)' -cf - . | gzip -1 > '\(reference)'")
                let tarMillis = StagingHost.seconds(ContinuousClock.now - tarStarted) * 1000
                if run > 0 {  // run 0 warms the buildpack checkout and the app's cache
                    staging.append(millis)
                    tarGzip.append(tarMillis)
                }
            }
            rows.append(Row(fixture: fixture.name, stagingMillis: staging, tarGzipMillis: tarGzip, dropletBytes: dropletBytes))
        }
        return rows
    }

    /// Runs a setup or reference step of the benchmark through bash.
    static func sh(_ command: String) async throws {
        let result = try await CommandRunner.run("/bin/bash", ["-c", "set -o pipefail; " + command], stdout: .null, timeout: .seconds(600))
        guard result.status == 0 else {
            throw StagerError("command failed (\(result.status)): \(command): \(CommandRunner.tailText(result.stderr))")
        }
    }
}

/// Staging log lines kept for an error message.
final class LineBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ more: [LogLine]) {
        lock.lock()
        lines += more.map(\.message)
        if lines.count > 200 { lines.removeFirst(lines.count - 200) }
        lock.unlock()
    }
    var text: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }
}
