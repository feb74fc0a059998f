import Containers
import Crypto
import Foundation
import GitFetch
import Logging
import NIOCore
import NIOPosix
import PlatformClient
import PlatformModels

/// The staging component: claims builds from the CC, stages them in containers
/// (``StagingHost``), ships the staging log line by line and uploads the droplet and cache.
///
/// At most `max_parallel` builds run at once; while all slots are busy the poll is a plain
/// heartbeat. Builds a previous stager process left behind are not resumed: the CC fails them
/// when the first poll does not list them.
public actor Stager {
    public let config: StagerConfig
    let client: ComponentClient
    nonisolated let host: StagingHost
    let logger: Logger
    private var running: [String: Task<Void, Never>] = [:]
    private var heartbeatInterval = 10

    /// A stager keeping its state in `config.stateDirectory`.
    public init(config: StagerConfig, client: ComponentClient, threadPool: NIOThreadPool, logger: Logger) throws {
        self.config = config
        self.client = client
        self.logger = logger
        let state = config.stateDirectory
        let fm = FileManager.default
        for dir in [state, state + "/builds", state + "/downloads", state + "/runc", state + "/buildpacks"] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        chmod(state, 0o711)
        let runc = try Runc(executable: config.runcPath, root: state + "/runc", logger: logger)
        let shim = try ContainerShim(executable: config.shimPath, runc: runc, logMaxBytes: config.logMaxBytes,
                                     linesPerSecond: config.logLinesPerSecond, burst: config.logLinesPerSecond * 2, logger: logger)
        let network = try ContainerNetwork(
            config: ContainerNetworkConfig(subnet: config.subnet, hostPortRange: config.hostPortRange, allowOutbound: config.allowOutbound,
                                           tableName: config.nftablesTable, interfacePrefix: config.interfacePrefix),
            logger: logger)
        var policy = GitURLPolicy.default
        policy.insecureHostAllowList = Set(config.gitHTTPHosts)
        host = StagingHost(
            runc: runc, shim: shim, network: network, stackSkeleton: state + "/stack", buildsRoot: state + "/builds",
            buildpackCache: state + "/buildpacks", stagerID: config.stagerID, pidsLimit: config.pidsLimit,
            fetchLimits: FetchLimits(timeout: .seconds(config.buildpackFetchTimeoutSeconds), maxReceivedBytes: config.buildpackMaxBytes,
                                     maxCheckoutBytes: config.buildpackMaxBytes * 2),
            gitPolicy: policy, maxArchiveBytes: config.maxArchiveBytes, threadPool: threadPool, logger: logger)
    }

    /// Clears what an earlier process left (containers, mounts, network) and builds the stack skeleton.
    public func prepare() async throws {
        await host.removeLeftovers()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: config.stateDirectory + "/downloads")) ?? [] {
            try? FileManager.default.removeItem(atPath: config.stateDirectory + "/downloads/" + name)
        }
        // No overlay uses the skeleton now, so it is rebuilt from the current host on every start.
        try HostStack(hostname: "staging").buildSkeleton(at: host.stackSkeleton)
        try await host.network.prepare(keeping: [])
    }

    /// Removes the staging network (nftables table, namespaces) and the stager's cgroup parent;
    /// for tests and cleanup.
    public func teardownNetwork() async throws {
        try await host.network.teardown()
        await CgroupParent("/cflike/\(config.stagerID)").remove()
    }

    /// Polls and stages until cancelled; running builds are cancelled with it.
    public func run() async throws {
        try await prepare()
        logger.info("stager ready", metadata: ["stager": "\(config.stagerID)", "max_parallel": "\(config.maxParallel)"])
        var failures = 0
        while !Task.isCancelled {
            let free = max(0, config.maxParallel - running.count)
            let wait = free == 0 ? 0 : (running.isEmpty ? config.pollWaitSeconds : min(config.pollWaitSeconds, heartbeatInterval))
            let poll = StagerPoll(freeSlots: free, running: Array(running.keys).sorted(), stacks: config.stacks,
                                  version: PlatformVersion.current, waitSeconds: wait)
            do {
                let answer = try await client.pollStaging(stager: config.stagerID, poll)
                if failures > 0 { logger.info("controller reachable again", metadata: ["stager": "\(config.stagerID)"]) }
                failures = 0
                heartbeatInterval = max(1, answer.heartbeatIntervalSeconds)
                for job in answer.jobs where running[job.buildGUID] == nil { start(job) }
            } catch is CancellationError {
                break
            } catch {
                failures += 1
                if failures == 1 || failures % 30 == 0 {
                    logger.warning("poll failed", metadata: ["stager": "\(config.stagerID)", "error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(min(5, failures)))
                continue
            }
            if running.count >= config.maxParallel {
                // Busy: heartbeat on time, or poll again soon after a build ends.
                let until = ContinuousClock.now + .seconds(max(1, heartbeatInterval - 1))
                while running.count >= config.maxParallel, ContinuousClock.now < until, !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        for task in running.values { task.cancel() }
        for task in running.values { await task.value }
        // Nothing survives a stager (builds are not resumed), so its network and the cgroup its
        // containers lived under go with it. This task is cancelled by now and a cancelled caller
        // stops the commands it runs (and its sleeps): tear down from a task of its own.
        let network = host.network
        let logger = self.logger
        let cgroups = CgroupParent("/cflike/\(config.stagerID)")
        await Task {
            do { try await network.teardown() } catch {
                logger.warning("cannot remove the staging network", metadata: ["error": "\(error)"])
            }
            let left = await cgroups.remove()
            if !left.isEmpty {
                logger.warning("cannot remove the stager's cgroups", metadata: ["left": "\(left.joined(separator: " "))"])
            }
        }.value
        logger.info("stager stopped", metadata: ["stager": "\(config.stagerID)"])
    }

    private func start(_ job: StagingJob) {
        logger.info("staging", metadata: ["build": "\(job.buildGUID)", "app": "\(job.appGUID)", "buildpacks": "\(job.buildpacks.map(\.description))"])
        running[job.buildGUID] = Task { [self] in
            await self.stage(job)
            await self.finished(job.buildGUID)
        }
    }

    private func finished(_ build: String) {
        running[build] = nil
    }

    /// Downloads, stages, uploads and reports one build.
    func stage(_ job: StagingJob) async {
        let downloads = config.stateDirectory + "/downloads/" + job.buildGUID
        let log = logShipper()
        defer {
            try? FileManager.default.removeItem(atPath: downloads + ".package")
            try? FileManager.default.removeItem(atPath: downloads + ".cache")
            host.forget(job.buildGUID)
        }
        let started = ContinuousClock.now
        func fail(_ code: StagingResult.ErrorCode, _ message: String) async {
            await say(job, message, via: log)
            await report(job, .failed(code, message, duration: StagingHost.seconds(ContinuousClock.now - started)))
        }
        await say(job, "Downloading app package...", via: log)
        do {
            try await download("/internal/v1/staging/\(ComponentClient.segment(job.buildGUID))/package", to: downloads + ".package",
                               sha256: job.packageSHA256)
        } catch {
            if Self.isGone(error) { return logger.info("build no longer wanted", metadata: ["build": "\(job.buildGUID)"]) }
            return await fail(.stagingError, "The app package could not be downloaded: \(error)")
        }
        var cache: String?
        if let sha = job.cacheSHA256 {
            do {
                try await download("/internal/v1/staging/\(ComponentClient.segment(job.buildGUID))/cache", to: downloads + ".cache", sha256: sha)
                cache = downloads + ".cache"
            } catch {
                await say(job, "The build cache could not be downloaded (\(error)); staging without it", via: log)
            }
        }
        let outcome = await host.stage(job, package: downloads + ".package", cache: cache, log: log)
        guard var result = outcome.result.success.map({ _ in outcome.result }) else {
            return await report(job, outcome.result)
        }
        if let droplet = outcome.droplet {
            do {
                let stored = try await withRetries { try await self.client.uploadDroplet(build: job.buildGUID, file: droplet) }
                await say(job, "Uploaded droplet (\(Self.size(stored.sizeBytes)))", via: log)
            } catch {
                if Self.isGone(error) { return logger.info("build no longer wanted", metadata: ["build": "\(job.buildGUID)"]) }
                return await fail(.stagingError, "The droplet could not be uploaded: \(error)")
            }
        }
        if let newCache = outcome.cache {
            do {
                _ = try await withRetries { try await self.client.uploadCache(build: job.buildGUID, file: newCache) }
            } catch {
                logger.warning("cache upload failed", metadata: ["build": "\(job.buildGUID)", "error": "\(error)"])
            }
        }
        result.durationSeconds = StagingHost.seconds(ContinuousClock.now - started)
        await say(job, String(format: "Staging complete in %.1f s", result.durationSeconds), via: log)
        await report(job, result)
    }

    /// Reports the result (its failure text cleaned: every path's words meet here), retrying
    /// while the CC is unreachable.
    private func report(_ job: StagingJob, _ result: StagingResult) async {
        let result = result.cleaned()
        do {
            try await withRetries { try await self.client.completeStaging(build: job.buildGUID, result) }
            logger.info("staging finished", metadata: [
                "build": "\(job.buildGUID)", "outcome": "\(result.failure?.code.rawValue ?? "STAGED")",
                "seconds": "\(String(format: "%.2f", result.durationSeconds))"])
        } catch {
            logger.warning("cannot report staging result", metadata: ["build": "\(job.buildGUID)", "error": "\(error)"])
        }
    }

    /// Streams a blob into `path`, checking its SHA-256.
    private func download(_ path: String, to file: String, sha256 expected: String) async throws {
        _ = FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600])
        guard let handle = FileHandle(forWritingAtPath: file) else { throw StagerError("cannot write \(file)") }
        defer { try? handle.close() }
        var hasher = SHA256()
        var size = 0
        let limit = config.maxArchiveBytes
        _ = try await client.download(path) { chunk in
            size += chunk.readableBytes
            guard size <= limit else { throw StagerError("larger than \(limit) bytes") }
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            try handle.write(contentsOf: chunk.readableBytesView)
        }
        let actual = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        guard actual == expected.lowercased() else {
            throw StagerError("checksum mismatch (expected \(expected.prefix(12))..., got \(actual.prefix(12))...)")
        }
    }

    /// Up to 5 attempts over about 30 s while the CC is unreachable or answers 5xx.
    private func withRetries<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let failure as ComponentClient.Failure {
                attempt += 1
                let retriable = failure.statusCode.map { $0 >= 500 } ?? true
                guard retriable, attempt < 5, !Task.isCancelled else { throw failure }
                try await Task.sleep(for: .seconds(attempt * 2))
            }
        }
    }

    /// Ships staging log lines; a CC that cannot take them costs lines, never the build.
    private func logShipper() -> StagingLogSink {
        let client = self.client
        let logger = self.logger
        return { lines in
            guard !lines.isEmpty else { return }
            var start = 0
            while start < lines.count {
                let batch = Array(lines[start..<min(lines.count, start + 500)])
                start += batch.count
                do {
                    try await client.ship(logs: batch)
                } catch {
                    logger.debug("staging log lines dropped", metadata: ["lines": "\(batch.count)", "error": "\(error)"])
                }
            }
        }
    }

    /// The stager's own words in the staging log; they can quote app text (errors naming
    /// archive entries, buildpack failures), so they are cleaned line by line.
    private func say(_ job: StagingJob, _ text: String, via log: StagingLogSink) async {
        await log(LogLine.staging(app: job.appGUID, text, at: Int64(Date().timeIntervalSince1970 * 1e9)))
    }

    /// A 404 from the staging calls: the build was failed, finished or deleted meanwhile.
    static func isGone(_ error: any Error) -> Bool {
        (error as? ComponentClient.Failure)?.statusCode == 404
    }

    static func size(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? String(format: "%.1f MB", Double(bytes) / 1048576) : String(format: "%.0f KB", Double(bytes) / 1024)
    }
}

/// A stager failure with a message for the staging log.
struct StagerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
