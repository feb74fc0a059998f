import Foundation
import Hummingbird
import Logging
import NIOCore
import PlatformModels
import PostgresStore

/// The internal staging API (StagingProtocol.swift is the contract): stagers poll for builds,
/// fetch a build's package and the app's buildpack cache, upload the droplet and the new
/// cache, and report the outcome.
///
/// A poll is also the stager's heartbeat: it records the stager, fails the builds the stager
/// claimed but no longer reports running, and claims queued builds for its stacks, oldest first
/// (`FOR UPDATE SKIP LOCKED`, so racing stagers never claim the same build). With nothing to
/// claim it parks on `NOTIFY cflike_staging`, holding no database connection, and claims again
/// when woken. Every call about one build answers 404 once that build is not STAGING under a
/// stager's claim any more (finished, failed, lost, or deleted with its app): the stager then
/// gives it up.
struct StagingController {
    let services: Services
    var body: JSONBody { JSONBody(maxBytes: services.config.maxInternalBodyBytes) }

    static let maxWaitSeconds = 60
    static let maxSlots = 64
    static let maxRunning = 1000
    static let maxBuildpacks = 100
    /// Longest error message kept from a stager (bytes of UTF-8).
    static let maxErrorBytes = 4096

    func register(_ group: RouterGroup<ControllerContext>) {
        group.post("v1/stagers/:stager_id/poll", use: poll)
        group.get("v1/staging/:build_guid/package", use: package)
        group.get("v1/staging/:build_guid/cache", use: cache)
        group.put("v1/staging/:build_guid/droplet", use: uploadDroplet)
        group.put("v1/staging/:build_guid/cache", use: uploadCache)
        group.post("v1/staging/:build_guid/complete", use: complete)
    }

    // MARK: Validation

    static func stagerID(_ context: ControllerContext) throws -> String {
        let id = context.parameters.get("stager_id") ?? ""
        guard AgentsController.isAgentID(id) else {
            throw APIError.unprocessable(
                "Stager id '\(id.prefix(64))' is invalid: use 1 to 63 lower-case letters, digits, '.' and '-', starting with a letter or digit")
        }
        return id
    }

    static func validate(_ poll: StagerPoll) throws -> StagerPoll {
        var poll = poll
        guard (0...maxSlots).contains(poll.freeSlots) else { throw APIError.unprocessable("free_slots must be between 0 and \(maxSlots)") }
        guard poll.running.count <= maxRunning else { throw APIError.unprocessable("running holds at most \(maxRunning) builds") }
        poll.running = try poll.running.enumerated().map { try AgentsController.checkGuid($0.element, field: "running[\($0.offset)]") }
        guard poll.stacks.count <= 100 else { throw APIError.unprocessable("stacks holds at most 100 names") }
        for (i, stack) in poll.stacks.enumerated() { try AgentsController.checkText(stack, field: "stacks[\(i)]", max: 255) }
        if poll.freeSlots > 0, poll.stacks.isEmpty { throw APIError.unprocessable("stacks can't be empty when free_slots is above 0") }
        try AgentsController.checkText(poll.version, field: "version", max: 64, allowEmpty: true)
        guard poll.waitSeconds >= 0 else { throw APIError.unprocessable("wait_seconds must not be negative") }
        poll.waitSeconds = min(poll.waitSeconds, maxWaitSeconds)
        return poll
    }

    static func buildGone() -> APIError {
        APIError(status: .notFound, code: 10010, title: "CF-ResourceNotFound",
                 detail: "Build not found, or no longer staging under a stager's claim: give it up")
    }

    /// A staging log line (`STG`) the controller itself writes for a build's app.
    static func line(app: String, error: Bool, _ message: String) -> LogLine {
        LogLine(appGUID: app, timestamp: Int64(Date().timeIntervalSince1970 * 1e9), sourceType: StagingProtocol.logSourceType,
                sourceInstance: "0", messageType: error ? .err : .out, message: message)
    }

    /// Fails `builds` (guid, app) still STAGING with `error`, logging it to each app.
    static func fail(_ conn: PostgresConnection, builds guids: [String], error: String, keep: Int) throws {
        guard !guids.isEmpty else { return }
        let failed = try conn.query(
            """
            UPDATE builds SET state = 'FAILED', error = $2, updated_at = now()
            WHERE guid = ANY($1::uuid[]) AND state = 'STAGING' RETURNING app_guid
            """, [guids, error])
        try AppLogStore.append(conn, try failed.map { line(app: try $0.decode("app_guid"), error: true, "Staging failed: \(error)") },
                               keep: keep)
    }

    // MARK: Poll

    @Sendable func poll(_ request: Request, context: ControllerContext) async throws -> Response {
        let id = try Self.stagerID(context)
        let poll = try Self.validate(try await body.decode(
            StagerPoll.self, from: request, allowedKeys: ["free_slots", "running", "stacks", "version", "wait_seconds"]))
        let parks = poll.freeSlots > 0 && poll.waitSeconds > 0
        // Subscribe before the first claim, so a build queued in between still wakes this poll.
        let subscription = parks ? try await services.feed.subscribe(channel: StagingProtocol.stagingChannel) : nil
        var jobs = try await pass(id, poll, first: true, parkSeconds: parks ? poll.waitSeconds : nil)
        if jobs.isEmpty, let subscription {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(poll.waitSeconds)
            waiting: while jobs.isEmpty {
                let remaining = deadline - clock.now
                guard remaining > .zero else { break }
                switch await subscription.wait(timeout: remaining) {
                case .notified:
                    // Another stager may have taken the build: then wait on for what is left.
                    let left = Int((deadline - clock.now).components.seconds)
                    jobs = try await pass(id, poll, first: false, parkSeconds: left > 0 ? left : nil)
                case .timedOut, .stopped:
                    break waiting
                }
            }
            // The wait is over: the stager is seen now, and what the last look finds is the answer.
            if jobs.isEmpty { jobs = try await pass(id, poll, first: false, parkSeconds: nil) }
        }
        return try JSONResponse.make(StagerPollAnswer(jobs: jobs, heartbeatIntervalSeconds: services.config.stagerHeartbeatIntervalSeconds))
    }

    /// One transaction of a poll: records the stager, fails its lost builds (first pass only),
    /// claims what it has room for and returns their jobs. With nothing claimed and
    /// `parkSeconds` given, records how long the stager waits, so it is not taken for lost.
    private func pass(_ id: String, _ poll: StagerPoll, first: Bool, parkSeconds: Int?) async throws -> [StagingJob] {
        let config = services.config
        let box = BuildpackSelection.box(config)
        let logger = services.logger
        let (jobs, lost) = try await services.db.write { conn -> ([StagingJob], [String]) in
            try conn.query(
                """
                INSERT INTO stagers(id, stager_version, stacks, running, free_slots) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (id) DO UPDATE SET stager_version = EXCLUDED.stager_version, stacks = EXCLUDED.stacks,
                  running = EXCLUDED.running, free_slots = EXCLUDED.free_slots, last_seen_at = now(), poll_deadline = NULL
                """, [id, poll.version, poll.stacks, poll.running.count, poll.freeSlots])
            var lost: [String] = []
            if first {
                lost = try conn.query(
                    "SELECT guid FROM builds WHERE claimed_by = $1 AND state = 'STAGING' AND NOT guid = ANY($2::uuid[]) FOR UPDATE",
                    [id, poll.running]).map { try $0.decode("guid", as: String.self) }
                try Self.fail(conn, builds: lost, error: "StagingError - the stager \(id) lost the build (it restarted?)",
                              keep: config.appLogLines)
            }
            var jobs: [StagingJob] = []
            if poll.freeSlots > 0 {
                let claimed = try conn.query(
                    """
                    UPDATE builds b SET claimed_by = $1, claimed_at = now(), updated_at = now(),
                      input_cache_sha256 = (SELECT a.buildpack_cache_sha256 FROM apps a WHERE a.guid = b.app_guid)
                    WHERE b.guid IN (
                      SELECT guid FROM builds WHERE state = 'STAGING' AND claimed_by IS NULL AND stack = ANY($2::text[])
                      ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                    RETURNING b.guid
                    """, [id, poll.stacks, poll.freeSlots]).map { try $0.decode("guid", as: String.self) }
                if !claimed.isEmpty { jobs = try Self.jobs(conn, builds: claimed, stager: id, box: box, config: config) }
            }
            if jobs.isEmpty, let parkSeconds {
                try conn.query("UPDATE stagers SET poll_deadline = now() + make_interval(secs => $2) WHERE id = $1", [id, parkSeconds])
            }
            return (jobs, lost)
        }
        if !lost.isEmpty {
            logger.warning("builds lost by their stager", metadata: ["stager.id": .string(id), "build.guids": .string(lost.joined(separator: ","))])
        }
        for job in jobs {
            logger.info("build claimed", metadata: ["stager.id": .string(id), "build.guid": .string(job.buildGUID), "app.guid": .string(job.appGUID)])
        }
        return jobs
    }

    /// The jobs of builds just claimed, oldest first; a build that cannot be staged any more
    /// (its package's bits or its sealed buildpacks are gone) fails instead.
    static func jobs(_ conn: PostgresConnection, builds: [String], stager: String, box: SecretBox,
                     config: ControllerConfig) throws -> [StagingJob] {
        let rows = try conn.query(
            """
            SELECT b.guid, b.app_guid, b.stack, b.staging_buildpacks_sealed, b.detect, b.staging_memory_in_mb,
              b.staging_disk_in_mb, b.timeout_seconds, b.input_cache_sha256, a.name AS app_name, a.environment_variables,
              s.guid AS space_guid, s.name AS space_name, o.guid AS organization_guid, o.name AS organization_name,
              p.blob_sha256 AS package_sha256,
              (SELECT command FROM processes WHERE app_guid = a.guid AND type = 'web') AS web_command
            FROM builds b JOIN apps a ON a.guid = b.app_guid JOIN spaces s ON s.guid = a.space_guid
              JOIN organizations o ON o.guid = s.organization_guid
              LEFT JOIN packages p ON p.guid = b.package_guid AND p.state = 'READY'
            WHERE b.guid = ANY($1::uuid[]) ORDER BY b.created_at, b.id
            """, [builds])
        var jobs: [StagingJob] = []
        var lines: [LogLine] = []
        for row in rows {
            let guid = try row.decode("guid", as: String.self)
            let app = try row.decode("app_guid", as: String.self)
            guard let package = try row.decode("package_sha256", as: String?.self) else {
                try fail(conn, builds: [guid], error: "StagingError - the package of this build has no bits any more", keep: config.appLogLines)
                continue
            }
            guard let buildpacks = try? JSONDecoder().decode(
                [StagingBuildpack].self, from: Data(try box.open(try row.decode("staging_buildpacks_sealed")).utf8))
            else {
                try fail(conn, builds: [guid], error: "StagingError - the build's buildpacks cannot be read (was the token signing key changed?)",
                         keep: config.appLogLines)
                continue
            }
            let detect = try row.decode("detect", as: Bool.self)
            let stack = try row.decode("stack", as: String.self)
            let names = buildpacks.map(\.description).joined(separator: ", ")
            lines.append(line(app: app, error: false, detect
                ? "Stager \(stager) is staging build \(guid) on stack \(stack), detecting among: \(names)"
                : "Stager \(stager) is staging build \(guid) on stack \(stack) with: \(names)"))
            jobs.append(StagingJob(
                buildGUID: guid, appGUID: app, appName: try row.decode("app_name"), spaceGUID: try row.decode("space_guid"),
                spaceName: try row.decode("space_name"), organizationGUID: try row.decode("organization_guid"),
                organizationName: try row.decode("organization_name"), stack: stack, packageSHA256: package,
                cacheSHA256: try row.decode("input_cache_sha256", as: String?.self), buildpacks: buildpacks, detect: detect,
                environment: try Rows.stringMap(row, "environment_variables"), startCommand: try row.decode("web_command", as: String?.self),
                memoryMB: try row.decode("staging_memory_in_mb"), diskMB: try row.decode("staging_disk_in_mb"),
                timeoutSeconds: try row.decode("timeout_seconds")))
        }
        try AppLogStore.append(conn, lines, keep: config.appLogLines)
        return jobs
    }

    // MARK: Bits for the stager

    /// The build's row while it is STAGING under a claim, else 404.
    static func activeBuild(_ conn: PostgresConnection, _ guid: String, columns: String, lock: Bool = false) throws -> PostgresRow {
        guard let row = try conn.query(
            "SELECT \(columns) FROM builds WHERE guid = $1 AND state = 'STAGING' AND claimed_by IS NOT NULL\(lock ? " FOR UPDATE" : "")",
            [guid]).first
        else { throw buildGone() }
        return row
    }

    @Sendable func package(_ request: Request, context: ControllerContext) async throws -> Response {
        let guid = try services.guidParameter(context, "build_guid", resource: "Build")
        let sha = try await services.db.read { conn -> String in
            let build = try Self.activeBuild(conn, guid, columns: "package_guid")
            guard let sha = try conn.query("SELECT blob_sha256 FROM packages WHERE guid = $1 AND state = 'READY'",
                                           [try build.decode("package_guid", as: String.self)]).first?
                .decode("blob_sha256", as: String?.self)
            else { throw APIError.notFound("Package") }
            return sha
        }
        return try await services.blobResponse(sha, contentType: "application/octet-stream", notFound: APIError.notFound("Package"),
                                               metadata: ["build.guid": .string(guid)])
    }

    @Sendable func cache(_ request: Request, context: ControllerContext) async throws -> Response {
        let guid = try services.guidParameter(context, "build_guid", resource: "Build")
        let sha = try await services.db.read { conn in
            try Self.activeBuild(conn, guid, columns: "input_cache_sha256").decode("input_cache_sha256", as: String?.self)
        }
        let none = APIError(status: .notFound, code: 10010, title: "CF-ResourceNotFound", detail: "The app has no buildpack cache")
        guard let sha else { throw none }
        return try await services.blobResponse(sha, contentType: "application/gzip", notFound: none, metadata: ["build.guid": .string(guid)])
    }

    // MARK: Uploads

    /// What a stager uploads for a build; the raw values name the build's columns.
    enum Upload: String {
        case droplet, cache
    }

    @Sendable func uploadDroplet(_ request: Request, context: ControllerContext) async throws -> Response {
        try await receive(request, context, .droplet)
    }

    @Sendable func uploadCache(_ request: Request, context: ControllerContext) async throws -> Response {
        try await receive(request, context, .cache)
    }

    /// Streams the raw body into the blobstore under `controller.max_droplet_bytes` (413 as soon
    /// as the declared length or the bytes received pass it), validates every entry with the
    /// safe extractor (as droplet uploads are), then records the blob on the build.
    private func receive(_ request: Request, _ context: ControllerContext, _ upload: Upload) async throws -> Response {
        let guid = try services.guidParameter(context, "build_guid", resource: "Build")
        let limit = services.config.maxDropletBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.bodyTooLarge(limit: limit)
        }
        _ = try await services.db.read { conn in try Self.activeBuild(conn, guid, columns: "guid")["guid"] }
        let (sha, size) = try await receiveArchive(request, limit: limit)
        let column = upload.rawValue
        // Nothing recorded when the build ended meanwhile: the janitor then removes the blob.
        _ = try await services.db.write { conn in
            _ = try Self.activeBuild(conn, guid, columns: "guid", lock: true)
            try conn.query(
                "UPDATE builds SET \(column)_blob_sha256 = $2, \(column)_size_bytes = $3, updated_at = now() WHERE guid = $1",
                [guid, sha, size])
        }
        services.logger.info("staging blob stored", metadata: [
            "build.guid": .string(guid), "blob.kind": .string(column), "blob.sha256": .string(sha), "blob.size": .stringConvertible(size),
        ])
        return try JSONResponse.make(StagingBlobStored(sha256: sha, sizeBytes: size))
    }

    /// The body into a blob writer in 1 MiB batches written on the thread pool, validated entry
    /// by entry, then committed; nothing is left behind when anything fails.
    private func receiveArchive(_ request: Request, limit: Int) async throws -> (String, Int) {
        let services = self.services
        let writer = try await services.threadPool.runIfActive { try services.blobstore.writer(limit: limit) }
        var pending: [UInt8] = []
        do {
            for try await chunk in request.body {
                pending.append(contentsOf: chunk.readableBytesView)
                if pending.count >= 1 << 20 {
                    let bytes = pending
                    pending.removeAll(keepingCapacity: true)
                    try await services.threadPool.runIfActive { try writer.write(bytes) }
                }
            }
            let rest = pending
            try await services.threadPool.runIfActive { try writer.write(rest) }
        } catch let failure as Blobstore.Failure where failure.kind == .tooLarge {
            writer.discard()
            throw APIError.bodyTooLarge(limit: limit)
        } catch {
            writer.discard()
            throw APIError.unprocessable("The upload was interrupted")
        }
        guard writer.size > 0 else {
            writer.discard()
            throw APIError.unprocessable("The upload is empty: send the tar.gz as the request body")
        }
        let written = try await services.threadPool.runIfActive { try writer.finish() }
        let config = services.config
        do {
            try await services.threadPool.runIfActive { try Services.validate(archive: written.tempPath, config: config, logger: services.logger) }
        } catch {
            try? FileManager.default.removeItem(atPath: written.tempPath)
            throw error
        }
        let sha = try await services.threadPool.runIfActive { try services.blobstore.commit(written) }
        return (sha, written.size)
    }

    // MARK: Result

    /// Text from a stager made safe to store and show: cleaned as ``UntrustedText`` (escape
    /// sequences and control characters other than newline and tab dropped), credentials of
    /// the build's URLs replaced, length capped, ends trimmed. Escapes go before the
    /// credentials are looked for, so none hides behind one; the cap comes after, so it
    /// never leaves half a credential.
    static func clean(_ text: String, _ buildpacks: [StagingBuildpack], max: Int = maxErrorBytes) -> String {
        let safe = UntrustedText.clean(text, as: UntrustedText.Field(multiLine: true, maxBytes: max * 2))
        let scrubbed = BuildpackSelection.scrub(safe, buildpacks)
        return UntrustedText.clean(scrubbed, as: UntrustedText.Field(multiLine: true, maxBytes: max))
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func validate(_ success: StagingResult.Success) throws {
        try DropletsController.validateProcessTypes(success.processTypes)
        guard success.buildpacks.count <= maxBuildpacks else {
            throw APIError.unprocessable("success.buildpacks holds at most \(maxBuildpacks) entries")
        }
        try AgentsController.checkText(success.stack, field: "success.stack", max: 255, allowEmpty: true)
        if let command = success.startCommand, command.utf8.count > 4096 || command.contains("\0") {
            throw APIError.unprocessable("success.start_command is over 4096 bytes or holds a NUL byte")
        }
    }

    @Sendable func complete(_ request: Request, context: ControllerContext) async throws -> Response {
        let guid = try services.guidParameter(context, "build_guid", resource: "Build")
        let result = try await body.decode(StagingResult.self, from: request, allowedKeys: ["success", "failure", "duration_seconds"],
                                           repairingText: true)
        guard (result.success == nil) != (result.failure == nil) else {
            throw APIError.unprocessable("Give exactly one of success and failure")
        }
        try AgentsController.checkFinite(result.durationSeconds, field: "duration_seconds")
        if let success = result.success { try Self.validate(success) }
        let config = services.config
        let box = BuildpackSelection.box(config)
        let outcome = try await services.db.write { conn -> (state: String, app: String, detail: String) in
            let build = try Self.activeBuild(
                conn, guid,
                columns: """
                    app_guid, package_guid, stack, staging_buildpacks_sealed, droplet_blob_sha256, droplet_size_bytes,
                    cache_blob_sha256, cache_size_bytes, created_by_guid, created_by_name
                    """, lock: true)
            let app = try build.decode("app_guid", as: String.self)
            let buildpacks = (try? JSONDecoder().decode(
                [StagingBuildpack].self, from: Data(try box.open(try build.decode("staging_buildpacks_sealed")).utf8))) ?? []
            if let failure = result.failure {
                let message = Self.clean(failure.message, buildpacks)
                let error = "\(failure.code.rawValue) - \(message.isEmpty ? "staging failed" : message)"
                try conn.query("UPDATE builds SET state = 'FAILED', error = $2, updated_at = now() WHERE guid = $1", [guid, error])
                return ("FAILED", app, error)
            }
            guard let success = result.success else { throw APIError.unprocessable("Give exactly one of success and failure") }
            guard let dropletSHA = try build.decode("droplet_blob_sha256", as: String?.self) else {
                throw APIError.unprocessable("The droplet was not uploaded: PUT /internal/v1/staging/\(guid)/droplet first")
            }
            var processTypes = success.processTypes
            if processTypes["web"] == nil, let command = success.startCommand, !command.isEmpty { processTypes["web"] = command }
            let staged = success.buildpacks.map { buildpack in
                DropletResource.BuildpackInfo(
                    name: Self.clean(buildpack.name, buildpacks, max: 4096),
                    detectOutput: buildpack.detectOutput.map { Self.clean($0, buildpacks, max: 4096) },
                    buildpackName: buildpack.buildpackName.map { Self.clean($0, buildpacks, max: 255) },
                    version: buildpack.version.map { Self.clean($0, buildpacks, max: 255) })
            }
            let droplet = Rows.newGuid()
            let stack = success.stack.isEmpty ? try build.decode("stack", as: String.self) : success.stack
            try conn.query(
                """
                INSERT INTO droplets(guid, app_guid, package_guid, state, process_types, buildpacks, stack, blob_sha256, size_bytes)
                VALUES ($1, $2, (SELECT guid FROM packages WHERE guid = $3), 'STAGED', $4::jsonb, $5::jsonb, $6, $7, $8)
                """,
                [droplet, app, try build.decode("package_guid", as: String.self),
                 String(decoding: try JSONEncoder().encode(processTypes), as: UTF8.self),
                 String(decoding: try JSONEncoder().encode(staged), as: UTF8.self), stack, dropletSHA,
                 try build.decode("droplet_size_bytes", as: Int?.self)])
            try conn.query(
                "UPDATE builds SET state = 'STAGED', droplet_guid = $2, updated_at = now() WHERE guid = $1", [guid, droplet])
            if let cache = try build.decode("cache_blob_sha256", as: String?.self) {
                try conn.query(
                    "UPDATE apps SET buildpack_cache_sha256 = $2, buildpack_cache_size_bytes = $3 WHERE guid = $1",
                    [app, cache, try build.decode("cache_size_bytes", as: Int?.self)])
            }
            try DropletsController.prune(conn, app: app)
            guard let appRow = try conn.query(
                "SELECT a.name, a.space_guid, s.organization_guid FROM apps a JOIN spaces s ON s.guid = a.space_guid WHERE a.guid = $1",
                [app]).first
            else { throw Self.buildGone() }
            let creator = Actor(userGuid: try build.decode("created_by_guid"), username: try build.decode("created_by_name"), isAdmin: false)
            try AuditLog.record(conn, "audit.app.droplet.create", actor: creator,
                                target: .init(guid: app, type: "app", name: try appRow.decode("name")),
                                spaceGuid: try appRow.decode("space_guid"), organizationGuid: try appRow.decode("organization_guid"),
                                data: ["droplet_guid": .string(droplet), "package_guid": .string(try build.decode("package_guid")),
                                       "build_guid": .string(guid)])
            return ("STAGED", app, droplet)
        }
        var metadata: Logger.Metadata = [
            "build.guid": .string(guid), "app.guid": .string(outcome.app), "build.state": .string(outcome.state),
            "staging.duration_seconds": .stringConvertible(result.durationSeconds),
        ]
        if outcome.state == "STAGED" { metadata["droplet.guid"] = .string(outcome.detail) } else { metadata["build.error"] = .string(outcome.detail) }
        services.logger.info("build finished", metadata: metadata)
        return JSONResponse.noContent()
    }
}
