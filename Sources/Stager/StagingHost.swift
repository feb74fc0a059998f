import Archives
import Containers
import Crypto
import Glibc
import Foundation
import GitFetch
import Logging
import NIOPosix
import PlatformModels

/// Everything one staging produced: the result to report and the files to upload.
struct StagingOutcome: Sendable {
    var result: StagingResult
    /// The droplet (tar.gz) when staging succeeded.
    var droplet: String?
    /// The new buildpack cache (tar.gz), when the buildpacks left anything in it.
    var cache: String?
}

/// Receives staging log lines as they are produced.
typealias StagingLogSink = @Sendable ([LogLine]) async -> Void

/// Stages builds on this host; knows nothing of the CC (the ``Stager`` downloads the package
/// and cache before and uploads the results after).
///
/// A build runs in two containers on one overlay root filesystem (the stack skeleton below a
/// per-build writable layer): the builder (detect, supply / finalize or compile, release) and,
/// once the stager has read the release and Procfile, the packer (droplet and cache tar.gz).
/// Both run as vcap with no capabilities, seccomp, memory, pids and time limits, in their own
/// network namespace whose traffic may leave through NAT but never reach this host's ports.
struct StagingHost: Sendable {
    let runc: Runc
    let shim: ContainerShim
    let network: ContainerNetwork
    /// The stack skeleton (lower layer of every staging root filesystem).
    let stackSkeleton: String
    /// One directory per build in progress.
    let buildsRoot: String
    /// Buildpack checkouts, by URL and commit.
    let buildpackCache: String
    let stagerID: String
    let pidsLimit: Int
    let fetchLimits: FetchLimits
    let gitPolicy: GitURLPolicy
    let maxArchiveBytes: Int
    let threadPool: NIOThreadPool
    let logger: Logger

    /// How often the writable layer's size is checked against the build's disk limit.
    static let diskCheckInterval: Duration = .seconds(2)
    /// How often the shim's log is read while a phase runs.
    static let logPollInterval: Duration = .milliseconds(50)

    func directory(_ build: String) -> BuildPaths { BuildPaths(root: buildsRoot, build: build) }

    /// Stages `job` from a local package (and cache) file. Never throws: every failure becomes
    /// a failed ``StagingResult`` with CF's error name and the buildpack's own words.
    func stage(_ job: StagingJob, package: String, cache: String?, log: @escaping StagingLogSink) async -> StagingOutcome {
        let started = ContinuousClock.now
        let run = StagingRun(host: self, job: job, paths: directory(job.buildGUID), log: log,
                             deadline: started + .seconds(job.timeoutSeconds))
        let outcome = await run.execute(package: package, cache: cache)
        // Containers, mounts and network go even when the build was cancelled (a cancelled
        // caller would stop the commands that remove them), so clean up from a task of its own.
        await Task { await run.cleanUp() }.value
        var result = outcome.result
        result.durationSeconds = Self.seconds(ContinuousClock.now - started)
        return StagingOutcome(result: result, droplet: outcome.droplet, cache: outcome.cache)
    }

    /// Removes a build's directory (after its results were uploaded).
    func forget(_ build: String) {
        let paths = directory(build)
        if (try? MountTable.isMounted(paths.rootfs)) == true { try? OverlayMount.unmount(paths.rootfs) }
        try? FileManager.default.removeItem(atPath: paths.base)
    }

    /// Removes whatever a previous stager process left: containers, mounts, directories.
    func removeLeftovers() async {
        for container in (try? await runc.list()) ?? [] where container.id.hasPrefix("stg-") {
            try? await runc.delete(id: container.id, force: true)
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: buildsRoot)) ?? [] {
            forget(name)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// Where one build's files live on the host.
struct BuildPaths: Sendable {
    let base: String
    init(root: String, build: String) { base = root + "/" + build }
    var upper: String { base + "/upper" }
    var work: String { base + "/work" }
    var rootfs: String { base + "/rootfs" }
    var lifecycle: String { base + "/lifecycle" }
    var output: String { base + "/output" }
    var app: String { upper + "/tmp/app" }
    var cache: String { upper + "/tmp/cache" }
    var env: String { upper + "/tmp/env" }
    func bundle(_ phase: String) -> String { base + "/bundle-" + phase }
    func shim(_ phase: String) -> String { base + "/shim-" + phase }
}
