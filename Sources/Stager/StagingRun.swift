import Archives
import Containers
import Crypto
import Glibc
import Foundation
import GitFetch
import Logging
import NIOPosix
import PlatformModels

/// One build's staging, step by step.
final class StagingRun: Sendable {
    let host: StagingHost
    let job: StagingJob
    let paths: BuildPaths
    let log: StagingLogSink
    let deadline: ContinuousClock.Instant
    private let state = LockedState()

    /// What cleanup must undo, and the last lines of output for failure messages.
    private final class LockedState: @unchecked Sendable {
        private let lock = NSLock()
        private var _mounted = false
        private var _attachment: NetworkAttachment?
        private var _containers: [String] = []
        private var _tail: [String] = []
        func with<T>(_ body: (LockedState) -> T) -> T { lock.lock(); defer { lock.unlock() }; return body(self) }
        var mounted: Bool { get { with { $0._mounted } } set { with { $0._mounted = newValue } } }
        var attachment: NetworkAttachment? { get { with { $0._attachment } } set { with { $0._attachment = newValue } } }
        var containers: [String] { with { $0._containers } }
        func addContainer(_ id: String) { with { $0._containers.append(id) } }
        var tail: [String] { with { $0._tail } }
        func remember(_ line: String) {
            with {
                $0._tail.append(line)
                if $0._tail.count > 30 { $0._tail.removeFirst($0._tail.count - 30) }
            }
        }
    }

    init(host: StagingHost, job: StagingJob, paths: BuildPaths, log: @escaping StagingLogSink, deadline: ContinuousClock.Instant) {
        self.host = host
        self.job = job
        self.paths = paths
        self.log = log
        self.deadline = deadline
    }

    /// A failure to report, raised by a step.
    struct Failed: Error {
        var code: StagingResult.ErrorCode
        var message: String
    }

    var shortID: String { String(job.buildGUID.lowercased().filter { $0 != "-" }.prefix(20)) }
    func containerID(_ phase: String) -> String { "stg-\(shortID)-\(phase)" }
    var cgroupBase: String { "/cflike/\(host.stagerID)/\(shortID)" }

    // MARK: Steps

    func execute(package: String, cache: String?) async -> StagingOutcome {
        do {
            let buildpacks = try await fetchBuildpacks()
            try await prepareFilesystem(package: package, cache: cache, buildpacks: buildpacks)
            try await attachNetwork()
            let built = try await runPhase("build", arguments: ["/bin/bash", "/tmp/lifecycle/builder", job.detect ? "detect" : "named"],
                                           mounts: buildpackMounts(buildpacks))
            try checkBuilder(built)
            let success = try release(buildpacks: buildpacks)
            if let command = success.startCommand { await say("Start command: \(command)") }
            await say("Uploading droplet, build artifacts cache...")
            let packed = try await runPhase("pack", arguments: ["/bin/bash", "/tmp/lifecycle/packer"], mounts: [])
            guard case .exited(0) = packed else {
                throw Failed(code: .stagingError, message: "Packing the droplet failed: \(packed.describe(memoryMB: job.memoryMB, diskMB: job.diskMB))")
            }
            let droplet = paths.output + "/droplet.tgz"
            guard Self.isRegularFile(droplet) else {
                throw Failed(code: .stagingError, message: "Packing the droplet left no droplet file")
            }
            let cache = paths.output + "/cache.tgz"
            return StagingOutcome(result: .staged(success, duration: 0), droplet: droplet,
                                  cache: Self.isRegularFile(cache) ? cache : nil)
        } catch let failure as Failed {
            await say("Staging failed: \(failure.code.rawValue) - \(failure.message.split(separator: "\n").first ?? "")")
            return StagingOutcome(result: .failed(failure.code, failure.message, duration: 0), droplet: nil, cache: nil)
        } catch is CancellationError {
            return StagingOutcome(result: .failed(.stagingError, "Staging was cancelled", duration: 0), droplet: nil, cache: nil)
        } catch {
            host.logger.error("staging failed", metadata: ["build": "\(job.buildGUID)", "error": "\(error)"])
            await say("Staging failed: the stager could not run the build")
            return StagingOutcome(result: .failed(.stagingError, "The stager could not run the build: \(error)", duration: 0),
                                  droplet: nil, cache: nil)
        }
    }

    /// Fetches each buildpack (or takes it from the cache) with libgit2.
    func fetchBuildpacks() async throws -> [(StagingBuildpack, FetchedRepository)] {
        var fetched: [(StagingBuildpack, FetchedRepository)] = []
        let fetcher = GitFetcher(policy: host.gitPolicy, logger: host.logger)
        for buildpack in job.buildpacks {
            try Task.checkCancellation()
            let source: GitSource
            do {
                source = try GitSource(parsing: buildpack.url, trusted: buildpack.trusted)
            } catch {
                // The parser's message may quote the URL, credentials and all: name the buildpack instead.
                throw Failed(code: .buildpackFetchFailed, message: "Buildpack \(buildpack) has an invalid git URL")
            }
            let limits = host.fetchLimits
            let cacheDir = host.buildpackCache
            do {
                let repository = try await host.threadPool.runIfActive { try fetcher.fetch(source, into: cacheDir, limits: limits) }
                // Checkouts are made private; the build (vcap, through a read-only bind) must read this one.
                chmod(repository.directory, 0o755)
                await say("Buildpack \(buildpack) at \(repository.commit.prefix(12))\(repository.fromCache ? " (cached)" : "")")
                fetched.append((buildpack, repository))
            } catch let error as GitError {
                throw Failed(code: .buildpackFetchFailed, message: "Buildpack \(buildpack) could not be fetched: \(error.message)")
            }
        }
        if fetched.isEmpty {
            throw Failed(code: .noAppDetected, message: "An app was not successfully detected by any available buildpack (none is registered)")
        }
        return fetched
    }

    /// The writable layer (package, cache, env), the lifecycle files and the overlay.
    func prepareFilesystem(package: String, cache: String?, buildpacks: [(StagingBuildpack, FetchedRepository)]) async throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: paths.base)
        for dir in [paths.work, paths.rootfs, paths.lifecycle, paths.upper + "/tmp"] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        chmod(paths.upper + "/tmp", 0o1777)
        for dir in [paths.app, paths.cache, paths.upper + "/tmp/deps", paths.output] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            chown(dir, 2000, 2000)
        }
        try fm.createDirectory(atPath: paths.env, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])

        let limits = SafeExtractor.Limits(maxTotalBytes: Int64(host.maxArchiveBytes), maxEntries: 1_000_000, maxCompressionRatio: 1000)
        let extractor = SafeExtractor(limits: limits, options: .init(owner: .init(uid: 2000, gid: 2000), allowSymlinks: true),
                                      logger: host.logger)
        let app = paths.app
        do {
            let counts = try await host.threadPool.runIfActive { try extractor.extract(archiveAt: package, into: app) }
            host.logger.debug("package extracted", metadata: ["build": "\(job.buildGUID)", "entries": "\(counts)"])
        } catch let error as ArchiveError {
            throw Failed(code: .stagingError, message: "The app package could not be extracted: \(error.message)\(error.entry.map { " (entry: '\($0)')" } ?? "")")
        }
        if let cache {
            let target = paths.cache
            do {
                _ = try await host.threadPool.runIfActive { try extractor.extract(archiveAt: cache, into: target) }
                await say("Restored the build cache")
            } catch {
                try? fm.removeItem(atPath: target)
                try fm.createDirectory(atPath: target, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                chown(target, 2000, 2000)
                await say("The build cache could not be restored (\(error)); staging without it")
            }
        }
        for (name, value) in job.environment where StagingEnvironment.isValidName(name) {
            try Data(value.utf8).write(to: URL(fileURLWithPath: paths.env + "/" + name))
        }
        let plan = buildpacks.enumerated().map { index, entry in
            "\(index)\t\(Self.cacheKey(entry.0))\t\(entry.0.description.replacingOccurrences(of: "\t", with: " "))"
        }.joined(separator: "\n") + "\n"
        try Data(plan.utf8).write(to: URL(fileURLWithPath: paths.lifecycle + "/plan"))
        try Data(Lifecycle.builder.utf8).write(to: URL(fileURLWithPath: paths.lifecycle + "/builder"))
        try Data(Lifecycle.packer.utf8).write(to: URL(fileURLWithPath: paths.lifecycle + "/packer"))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: paths.lifecycle + "/staging_info.yml"))

        try OverlayMount(lowerDirs: [host.stackSkeleton], upperDir: paths.upper, workDir: paths.work, target: paths.rootfs).mount()
        state.mounted = true
    }

    func attachNetwork() async throws {
        state.attachment = try await host.network.attach(id: containerID("net"))
    }

    /// Cache directories are named by buildpack, not position, so a reordered list keeps them.
    static func cacheKey(_ buildpack: StagingBuildpack) -> String {
        var url = buildpack.displayURL
        if let hash = url.firstIndex(of: "#") { url = String(url[..<hash]) }
        let digest = SHA256.hash(data: Data((buildpack.name ?? url).utf8))
        return digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    func buildpackMounts(_ buildpacks: [(StagingBuildpack, FetchedRepository)]) -> [Mount] {
        buildpacks.enumerated().map { index, entry in
            Mount(destination: "/tmp/buildpacks/\(index)", type: "bind", source: entry.1.directory,
                  options: ["rbind", "ro", "nosuid", "nodev"])
        }
    }

    /// Maps the builder's exit to CF's errors, with the buildpack's last words.
    func checkBuilder(_ end: PhaseEnd) throws {
        let failure = readOutput("failure", max: 4096).map {
            UntrustedText.clean(bytes: $0, as: .stagingError).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let tail = state.tail.suffix(20).joined(separator: "\n")
        let details = tail.isEmpty ? "" : "\n" + tail
        switch end {
        case .exited(0):
            return
        case .exited(Lifecycle.detectFailed):
            throw Failed(code: .noAppDetected, message: "An app was not successfully detected by any available buildpack")
        case .exited(Lifecycle.compileFailed), .exited(Lifecycle.supplyFailed):
            throw Failed(code: .buildpackCompileFailed, message: "App staging failed in the buildpack compile phase: \(failure ?? "the buildpack failed")\(details)")
        case .exited(Lifecycle.releaseFailed):
            throw Failed(code: .buildpackReleaseFailed, message: "App staging failed in the buildpack release phase: \(failure ?? "bin/release failed")\(details)")
        case .timedOut:
            throw Failed(code: .stagingTimeout, message: "Staging took longer than \(job.timeoutSeconds) seconds and was stopped")
        default:
            throw Failed(code: .stagingError, message: "Staging failed: \(end.describe(memoryMB: job.memoryMB, diskMB: job.diskMB))\(details)")
        }
    }

    /// Reads `bin/release` and the Procfile, decides the process types and writes
    /// `staging_info.yml` for the packer.
    func release(buildpacks: [(StagingBuildpack, FetchedRepository)]) throws -> StagingResult.Success {
        let releaseData = readOutput("release.yml", max: Lifecycle.maxReleaseBytes + 1) ?? Data()
        let info: ReleaseInfo
        do {
            info = try ReleaseInfo.parse(releaseData)
        } catch let invalid as ReleaseInfo.Invalid {
            throw Failed(code: .buildpackReleaseFailed, message: "App staging failed in the buildpack release phase: \(invalid.description)")
        }
        var types = info.defaultProcessTypes
        if let procfile = readOutput("Procfile", max: Lifecycle.maxProcfileBytes) {
            let parsed = ReleaseInfo.parseProcfile(procfile)
            if !parsed.invalidLines.isEmpty {
                throw Failed(code: .stagingError, message: "The Procfile is invalid: line \(parsed.invalidLines.map(String.init).joined(separator: ", ")) is not 'type: command'")
            }
            types.merge(parsed.types) { _, procfile in procfile }
        }
        let startCommand = types["web"]
        if startCommand == nil && (job.startCommand ?? "").isEmpty {
            throw Failed(code: .stagingError, message: "No start command: the buildpack gives no web process type, the app has no Procfile with a web line and no command was given (-c)")
        }

        // Which buildpacks took part and what they said about themselves.
        var staged: [StagedBuildpack] = []
        let detectedIndex = readOutput("detected", max: 32).flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
        let used: [Int] = job.detect ? (detectedIndex.map { [$0] } ?? []) : Array(buildpacks.indices)
        for index in used where buildpacks.indices.contains(index) {
            let (buildpack, repository) = buildpacks[index]
            let output = readOutput("detect-\(index)", max: Lifecycle.maxDetectBytes).map {
                UntrustedText.clean(bytes: $0, as: .init(multiLine: false, maxBytes: Lifecycle.maxDetectBytes))
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }.flatMap { $0.isEmpty ? nil : $0 }
            let words = output?.split(separator: " ").map(String.init) ?? []
            staged.append(StagedBuildpack(name: buildpack.name ?? buildpack.displayURL, detectOutput: output,
                                          buildpackName: words.first ?? buildpack.name, version: words.count > 1 ? words[1] : nil,
                                          commit: repository.commit))
        }
        let detected = staged.last.map { $0.buildpackName ?? $0.name } ?? ""
        let stagingInfo = StagingInfo(detectedBuildpack: detected, startCommand: startCommand ?? "")
        do {
            try stagingInfo.encoded().write(to: URL(fileURLWithPath: paths.lifecycle + "/staging_info.yml"))
        } catch {
            throw Failed(code: .stagingError, message: "Cannot write staging_info.yml: \(error)")
        }
        return StagingResult.Success(processTypes: types, buildpacks: staged, stack: job.stack, startCommand: startCommand)
    }

    // MARK: Containers

    /// How a phase's container ended.
    enum PhaseEnd: Equatable {
        case exited(Int)
        case signaled(Int)
        case outOfMemory
        case timedOut
        case diskExceeded

        func describe(memoryMB: Int, diskMB: Int) -> String {
            switch self {
            case .exited(let status): return "the staging process exited with status \(status)"
            case .signaled(let signal): return "the staging process was killed by signal \(signal)"
            case .outOfMemory: return "staging ran out of memory (limit \(memoryMB) MB)"
            case .timedOut: return "staging timed out"
            case .diskExceeded: return "staging used more than its disk limit (\(diskMB) MB)"
            }
        }
    }

    /// Runs one phase's container to its end, shipping its output line by line.
    func runPhase(_ phase: String, arguments: [String], mounts: [Mount]) async throws -> PhaseEnd {
        guard let attachment = state.attachment else { throw Failed(code: .stagingError, message: "no network for the staging container") }
        let id = containerID(phase)
        let stateDir = paths.shim(phase)
        let cgroup = cgroupBase + "-" + phase
        let env = StagingEnvironment(job: job).variables
        var extra = HostStack().readOnlyMounts()
        extra.append(Mount(destination: "/tmp/lifecycle", type: "bind", source: paths.lifecycle, options: ["rbind", "ro", "nosuid", "nodev"]))
        extra.append(Mount(destination: "/tmp/output", type: "bind", source: paths.output, options: ["rbind", "rw", "nosuid", "nodev"]))
        extra += mounts
        let secure = SecureSpec(
            args: arguments, env: env, cwd: "/tmp", rootfsPath: paths.rootfs, hostname: "staging",
            limits: .init(memoryBytes: Int64(job.memoryMB) << 20, cpuShares: 512, pids: Int64(host.pidsLimit), nofile: 16384),
            extraMounts: extra, network: .path(attachment.namespacePath), cgroupsPath: cgroup,
            annotations: ["cf-like.build-guid": job.buildGUID, "cf-like.phase": phase])
        _ = try OCIBundle.create(at: paths.bundle(phase), spec: try secure.makeSpec())
        state.addContainer(id)
        _ = try await host.shim.launch(id: id, bundle: paths.bundle(phase), stateDir: stateDir)

        var reader = ShimLogReader(stateDir: stateDir)
        var verdict: PhaseEnd?
        var nextDiskCheck = ContinuousClock.now + StagingHost.diskCheckInterval
        let diskLimit = Int64(job.diskMB) << 20
        while true {
            await forward(&reader)
            if let exit = ContainerShim.exit(stateDir: stateDir) {
                await forward(&reader)
                let oom = (try? CgroupReader().stats(cgroupPath: cgroup))?.wasOOMKilled ?? false
                try? await host.runc.delete(id: id, force: true)
                if let verdict { return verdict }
                if oom { return .outOfMemory }
                switch exit {
                case .exited(let status): return .exited(Int(status))
                case .signaled(let signal): return .signaled(Int(signal))
                }
            }
            if verdict == nil {
                let now = ContinuousClock.now
                if Task.isCancelled {
                    verdict = .signaled(9)
                } else if now >= deadline {
                    verdict = .timedOut
                    await say("Staging took longer than \(job.timeoutSeconds) seconds: stopping it")
                } else if now >= nextDiskCheck {
                    nextDiskCheck = now + StagingHost.diskCheckInterval
                    let upper = paths.upper, output = paths.output
                    let used = (try? await host.threadPool.runIfActive { DiskUsage.bytes(under: upper) + DiskUsage.bytes(under: output) }) ?? 0
                    if used > diskLimit {
                        verdict = .diskExceeded
                        await say("Staging used \(used >> 20) MB of disk, more than its \(job.diskMB) MB: stopping it")
                    }
                }
                if verdict != nil {
                    try? await host.runc.kill(id: id, signal: SIGKILL, all: true)
                }
            }
            try? await Task.sleep(for: StagingHost.logPollInterval)
        }
    }

    /// Ships what the shim logged since the last read.
    private func forward(_ reader: inout ShimLogReader) async {
        while true {
            guard let records = try? reader.read(maxRecords: 1000), !records.isEmpty else { return }
            var lines: [LogLine] = []
            lines.reserveCapacity(records.count)
            for record in records {
                let stream: LogLine.Stream = record.stream == .err ? .err : .out
                // Buildpack output enters here: cleaned once, for the log and the failure message.
                let text = UntrustedText.clean(record.text, as: .logMessage)
                if record.stream != .system { state.remember(text) }
                lines.append(LogLine(appGUID: job.appGUID, timestamp: record.timestampNanos, sourceType: StagingProtocol.logSourceType,
                                     sourceInstance: "0", messageType: stream, message: text))
            }
            await log(lines)
            if records.count < 1000 { return }
        }
    }

    /// A line of the stager's own in the staging log (cleaned: it can quote app text).
    func say(_ text: String) async {
        await log(LogLine.staging(app: job.appGUID, text, at: Int64(Date().timeIntervalSince1970 * 1e9)))
    }

    /// Removes the containers, the overlay and the network; the directory stays for uploads.
    func cleanUp() async {
        for id in state.containers {
            try? await host.runc.delete(id: id, force: true)
        }
        if state.mounted, (try? MountTable.isMounted(paths.rootfs)) == true {
            do { try OverlayMount.unmount(paths.rootfs) } catch {
                host.logger.warning("unmount failed", metadata: ["build": "\(job.buildGUID)", "error": "\(error)"])
            }
        }
        if let attachment = state.attachment {
            do { try await host.network.detach(attachment) } catch {
                host.logger.warning("network detach failed", metadata: ["build": "\(job.buildGUID)", "error": "\(error)"])
            }
        }
    }

    // MARK: Reading results

    /// A file the container left in the output directory: regular files only (a symlink is
    /// never followed), at most `max` bytes.
    func readOutput(_ name: String, max: Int) -> Data? {
        let fd = open(paths.output + "/" + name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let size = min(Int(st.st_size), max)
        var data = Data(count: size)
        let count = data.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, size) }
        guard count >= 0 else { return nil }
        return data.prefix(count)
    }

    static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}
