/// The internal API between stagers and the Cloud Controller.
///
/// All paths are under `/internal/v1/` and need `Authorization: component <credential>`.
///
/// | call | path | body → answer |
/// |---|---|---|
/// | poll (long-poll; also the stager's heartbeat) | `POST /internal/v1/stagers/:stager_id/poll` | ``StagerPoll`` → ``StagerPollAnswer`` |
/// | package bits | `GET /internal/v1/staging/:build_guid/package` | → archive bytes (zip or tar.gz), header `X-Content-SHA256` |
/// | app's buildpack cache | `GET /internal/v1/staging/:build_guid/cache` | → tar.gz bytes, header `X-Content-SHA256`; 404 when the app has none |
/// | droplet upload | `PUT /internal/v1/staging/:build_guid/droplet` | raw tar.gz body (streamed) → ``StagingBlobStored`` |
/// | new cache upload | `PUT /internal/v1/staging/:build_guid/cache` | raw tar.gz body (streamed) → ``StagingBlobStored`` |
/// | result | `POST /internal/v1/staging/:build_guid/complete` | ``StagingResult`` → 204 |
/// | staging log lines | `POST /internal/v1/logs` | ``LogBatch`` with `source_type` `STG` → 204 |
///
/// A poll with free slots claims up to that many queued builds (oldest first) and answers at
/// once when there are any; otherwise it waits up to `wait_seconds` (max 60) for a new build
/// (the CC is woken by `LISTEN cflike_staging`) and answers with whatever it claimed (maybe
/// nothing). A poll with no free slots answers at once: it is a heartbeat. Stagers poll at
/// least every `heartbeat_interval_seconds`; a build whose stager stops polling, or whose
/// stager's `running` list no longer names it, fails with `StagingError` ("the stager ... was
/// lost"). The staging calls for a build answer 404 once that build is no longer claimed by a
/// live stager (failed, or deleted with its app): the stager then stops working on it.
public enum StagingProtocol {
    /// NOTIFY channel the CC uses to wake stager polls (payload: build guid).
    public static let stagingChannel = "cflike_staging"
    /// `source_type` of staging log lines.
    public static let logSourceType = "STG"
}

/// `POST /internal/v1/stagers/:stager_id/poll`.
public struct StagerPoll: Codable, Sendable, Equatable {
    /// How many more builds this stager takes now (0: heartbeat only).
    public var freeSlots: Int
    /// Builds this stager is working on.
    public var running: [String]
    /// Stacks the stager can build for.
    public var stacks: [String]
    public var version: String
    /// How long to wait for work when none is queued (seconds, 0...60).
    public var waitSeconds: Int

    enum CodingKeys: String, CodingKey {
        case freeSlots = "free_slots", running, stacks, version, waitSeconds = "wait_seconds"
    }

    public init(freeSlots: Int, running: [String], stacks: [String], version: String, waitSeconds: Int) {
        self.freeSlots = freeSlots
        self.running = running
        self.stacks = stacks
        self.version = version
        self.waitSeconds = waitSeconds
    }
}

/// The answer to a poll: builds now claimed by this stager.
public struct StagerPollAnswer: Codable, Sendable, Equatable {
    public var jobs: [StagingJob]
    /// The stager must poll at least this often while it runs builds.
    public var heartbeatIntervalSeconds: Int

    enum CodingKeys: String, CodingKey { case jobs, heartbeatIntervalSeconds = "heartbeat_interval_seconds" }

    public init(jobs: [StagingJob], heartbeatIntervalSeconds: Int) {
        self.jobs = jobs
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
    }
}

/// A buildpack a build uses, as the stager fetches it.
///
/// `url` may carry credentials (`https://user:token@host/repo#ref`): it is never logged,
/// printed or returned by the public API; ``description`` shows ``displayURL`` only.
public struct StagingBuildpack: Codable, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The admin buildpack's name; nil for a git URL the app named itself.
    public var name: String?
    /// Git URL with optional `#branch`, `#tag` or `#commit`.
    public var url: String
    /// The same URL with credentials masked.
    public var displayURL: String
    /// Registered by an administrator (only then may `file://` URLs and local paths be used).
    public var trusted: Bool

    enum CodingKeys: String, CodingKey { case name, url, displayURL = "display_url", trusted }

    public init(name: String?, url: String, displayURL: String, trusted: Bool) {
        self.name = name
        self.url = url
        self.displayURL = displayURL
        self.trusted = trusted
    }

    public var description: String { name ?? displayURL }
    public var debugDescription: String { "StagingBuildpack(\(name ?? "-"), \(displayURL))" }
}

/// One build to stage, as claimed by a stager.
public struct StagingJob: Codable, Sendable, Equatable {
    public var buildGUID: String
    public var appGUID: String
    public var appName: String
    public var spaceGUID: String
    public var spaceName: String
    public var organizationGUID: String
    public var organizationName: String
    public var stack: String
    /// SHA-256 of the package bits served at `GET /internal/v1/staging/:build_guid/package`.
    public var packageSHA256: String
    /// SHA-256 of the app's buildpack cache, nil when the app has none (or it was cleared).
    public var cacheSHA256: String?
    /// With `detect` true: the candidates in position order, the first whose `bin/detect`
    /// passes wins. With `detect` false: every buildpack runs, the last one is final.
    public var buildpacks: [StagingBuildpack]
    public var detect: Bool
    /// The app's own environment variables (for `ENV_DIR` and the staging environment).
    public var environment: [String: String]
    /// Command the app gave (`-c`), which overrides the detected `web` command; nil if none.
    public var startCommand: String?
    public var memoryMB: Int
    public var diskMB: Int
    public var timeoutSeconds: Int

    enum CodingKeys: String, CodingKey {
        case buildGUID = "build_guid", appGUID = "app_guid", appName = "app_name", spaceGUID = "space_guid",
             spaceName = "space_name", organizationGUID = "organization_guid", organizationName = "organization_name",
             stack, packageSHA256 = "package_sha256", cacheSHA256 = "cache_sha256", buildpacks, detect,
             environment, startCommand = "start_command", memoryMB = "memory_mb", diskMB = "disk_mb",
             timeoutSeconds = "timeout_seconds"
    }

    public init(buildGUID: String, appGUID: String, appName: String, spaceGUID: String, spaceName: String,
                organizationGUID: String, organizationName: String, stack: String, packageSHA256: String,
                cacheSHA256: String?, buildpacks: [StagingBuildpack], detect: Bool, environment: [String: String],
                startCommand: String?, memoryMB: Int, diskMB: Int, timeoutSeconds: Int) {
        self.buildGUID = buildGUID
        self.appGUID = appGUID
        self.appName = appName
        self.spaceGUID = spaceGUID
        self.spaceName = spaceName
        self.organizationGUID = organizationGUID
        self.organizationName = organizationName
        self.stack = stack
        self.packageSHA256 = packageSHA256
        self.cacheSHA256 = cacheSHA256
        self.buildpacks = buildpacks
        self.detect = detect
        self.environment = environment
        self.startCommand = startCommand
        self.memoryMB = memoryMB
        self.diskMB = diskMB
        self.timeoutSeconds = timeoutSeconds
    }
}

/// The answer to a droplet or cache upload.
public struct StagingBlobStored: Codable, Sendable, Equatable {
    public var sha256: String
    public var sizeBytes: Int

    enum CodingKeys: String, CodingKey { case sha256, sizeBytes = "size_bytes" }

    public init(sha256: String, sizeBytes: Int) {
        self.sha256 = sha256
        self.sizeBytes = sizeBytes
    }
}

/// A buildpack as it took part in a successful build (becomes the droplet's `buildpacks`).
public struct StagedBuildpack: Codable, Sendable, Equatable {
    /// The admin buildpack's name, or the (redacted) URL for one the app named.
    public var name: String
    /// What `bin/detect` printed (or the `name` from the supplier's `config.yml`), if anything.
    public var detectOutput: String?
    /// `buildpack_name` as CF shows it: the detect output's first word, else the name.
    public var buildpackName: String?
    /// `version` from the detect output (`name 1.2.3`) or from `config.yml`, if any.
    public var version: String?
    /// The commit staged with.
    public var commit: String?

    enum CodingKeys: String, CodingKey {
        case name, detectOutput = "detect_output", buildpackName = "buildpack_name", version, commit
    }

    public init(name: String, detectOutput: String?, buildpackName: String?, version: String?, commit: String?) {
        self.name = name
        self.detectOutput = detectOutput
        self.buildpackName = buildpackName
        self.version = version
        self.commit = commit
    }
}

/// `POST /internal/v1/staging/:build_guid/complete`.
///
/// A success needs the droplet uploaded first (`PUT .../droplet`); the cache upload is optional.
public struct StagingResult: Codable, Sendable, Equatable {
    /// Why a build failed, CF's error names.
    public enum ErrorCode: String, Codable, Sendable, Equatable {
        case noAppDetected = "NoAppDetectedError"
        case buildpackCompileFailed = "BuildpackCompileFailed"
        case buildpackReleaseFailed = "BuildpackReleaseFailed"
        case buildpackFetchFailed = "BuildpackFetchFailed"
        case stagingTimeout = "StagingTimeExpired"
        case insufficientResources = "InsufficientResources"
        case stagingError = "StagingError"
    }

    public struct Failure: Codable, Sendable, Equatable {
        public var code: ErrorCode
        /// One or a few lines, the buildpack's own words where they exist.
        public var message: String
        public init(code: ErrorCode, message: String) {
            self.code = code
            self.message = message
        }
    }

    public struct Success: Codable, Sendable, Equatable {
        /// `type → command`, Procfile entries over the buildpack's `default_process_types`.
        public var processTypes: [String: String]
        public var buildpacks: [StagedBuildpack]
        public var stack: String
        /// The `start_command` written to `staging_info.yml` (the `web` command), if any.
        public var startCommand: String?

        enum CodingKeys: String, CodingKey {
            case processTypes = "process_types", buildpacks, stack, startCommand = "start_command"
        }

        public init(processTypes: [String: String], buildpacks: [StagedBuildpack], stack: String, startCommand: String?) {
            self.processTypes = processTypes
            self.buildpacks = buildpacks
            self.stack = stack
            self.startCommand = startCommand
        }
    }

    public var success: Success?
    public var failure: Failure?
    /// Wall-clock seconds the stager spent on the build.
    public var durationSeconds: Double

    enum CodingKeys: String, CodingKey { case success, failure, durationSeconds = "duration_seconds" }

    public static func staged(_ success: Success, duration: Double) -> StagingResult {
        StagingResult(success: success, failure: nil, durationSeconds: duration)
    }

    public static func failed(_ code: ErrorCode, _ message: String, duration: Double) -> StagingResult {
        StagingResult(success: nil, failure: Failure(code: code, message: message), durationSeconds: duration)
    }

    public init(success: Success?, failure: Failure?, durationSeconds: Double) {
        self.success = success
        self.failure = failure
        self.durationSeconds = durationSeconds
    }
}
