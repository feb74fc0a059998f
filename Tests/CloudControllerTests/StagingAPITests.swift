import Foundation
import HTTPTypes
import PlatformModels
import Testing

@testable import CloudController

extension ControllerIntegration {
    @Suite(.timeLimit(.minutes(2))) struct StagingAPI {
        /// A tenant, an app and an admin buildpack: what most staging tests start from.
        static func setUp(_ p: Platform) async throws -> (t: Platform.Tenant, app: String) {
            try await p.adminBuildpack("ruby", url: "https://git.example.com/ruby-buildpack.git")
            let t = try await p.tenant("alice")
            return (t, try await p.app("web", space: t.space, token: t.token))
        }

        @Test func racingStagersClaimEveryBuildExactlyOnceOldestFirst() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                var builds: [String] = []
                for _ in 0..<12 { builds.append(try await p.queuedBuild(app: app, token: t.token)) }
                // Oldest first.
                let first = try await p.poll("stager-0", slots: 2)
                #expect(first.jobs.map(\.buildGUID) == Array(builds[0..<2]))
                #expect(first.heartbeatIntervalSeconds == 10)
                // Two stagers race for the other ten, a few slots at a time.
                let claims = try await withThrowingTaskGroup(of: (String, [String]).self) { group in
                    for stager in ["stager-a", "stager-b"] {
                        group.addTask {
                            var mine: [String] = []
                            for _ in 0..<20 {
                                mine += try await p.poll(stager, slots: 2, running: mine).jobs.map(\.buildGUID)
                            }
                            return (stager, mine)
                        }
                    }
                    var all: [String: [String]] = [:]
                    for try await (stager, claimed) in group { all[stager] = claimed }
                    return all
                }
                let a = Set(claims["stager-a"] ?? []), b = Set(claims["stager-b"] ?? [])
                #expect(claims["stager-a"]?.count == a.count && claims["stager-b"]?.count == b.count, "no stager got a build twice")
                #expect(a.isDisjoint(with: b), "no build went to both stagers")
                #expect(a.union(b) == Set(builds[2...]))
                let claimedBy = try await p.pool.query("SELECT claimed_by, count(*) AS n FROM builds GROUP BY claimed_by ORDER BY claimed_by")
                    .rows.map { "\(try $0.decode("claimed_by", as: String.self))=\(try $0.decode("n", as: Int.self))" }
                #expect(claimedBy == ["stager-0=2", "stager-a=\(a.count)", "stager-b=\(b.count)"])
                // The stagers are recorded for `cf-like-admin status`.
                let stagers = try await p.pool.query("SELECT id, running, stacks, stager_version FROM stagers ORDER BY id").rows
                #expect(try stagers.map { try $0.decode("id", as: String.self) } == ["stager-0", "stager-a", "stager-b"])
                #expect(try stagers[0].decode("stacks", as: [String].self) == ["cflike-host"])
            }
        }

        @Test func aNewBuildWakesAParkedPollAtOnce() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                let package = try await p.readyPackage(app: app, token: t.token).guid
                let clock = ContinuousClock()
                let pollStart = clock.now
                async let woken = p.poll("stager-1", wait: 60)
                try await p.waitForSubscribers(1)  // from here on the build wakes the poll
                try await Task.sleep(for: .milliseconds(300))  // and it has read and parked by now
                let created = try await p.build(package: package, token: t.token)
                let committed = clock.now
                #expect(created.status == .created)
                let answer = try await woken
                let answered = clock.now
                print("staging poll answered \(answered - committed) after the build's commit")
                #expect(answer.jobs.map(\.buildGUID) == [created.guid])
                // Far below the 60 s wait, with room for a loaded machine.
                #expect(answered - committed < .seconds(30), "the NOTIFY wakes the poll, not its timeout")
                #expect(answered - pollStart >= .milliseconds(300), "it waited for the build")
            }
        }

        @Test func heartbeatsAndQuietPollsAnswerInTime() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                let clock = ContinuousClock()
                // A quiet poll waits out its wait_seconds and answers empty.
                let quiet = clock.now
                #expect(try await p.poll("stager-1", wait: 1).jobs.isEmpty)
                let waited = clock.now - quiet
                #expect(waited >= .milliseconds(950) && waited < .seconds(30), "\(waited)")
                // No free slot: a heartbeat, answered at once and claiming nothing though work is queued.
                let build = try await p.queuedBuild(app: app, token: t.token)
                let beat = clock.now
                #expect(try await p.poll("stager-1", slots: 0, wait: 60).jobs.isEmpty)
                #expect(clock.now - beat < .seconds(30), "not after its 60 s wait")
                // A build of a stack the stager lacks is not handed out.
                #expect(try await p.poll("stager-2", stacks: ["another-stack"]).jobs.isEmpty)
                // A poll with work queued answers at once whatever its wait.
                let busy = clock.now
                #expect(try await p.poll("stager-1", wait: 60).jobs.map(\.buildGUID) == [build])
                #expect(clock.now - busy < .seconds(30), "not after its 60 s wait")
                // Bad polls.
                #expect(try await p.pollReply("Stager_1").status == .unprocessableContent)
                #expect(try await p.pollReply("stager-1", slots: -1).status == .unprocessableContent)
                #expect(try await p.pollReply("stager-1", running: ["not-a-guid"]).status == .unprocessableContent)
                #expect(try await p.pollReply("stager-1", stacks: []).status == .unprocessableContent)
                let userToken = try await p.call(.post, "/internal/v1/stagers/stager-1/poll", token: t.token, json: "{}")
                #expect(userToken.status == .unauthorized, "user tokens never open the internal API")
            }
        }

        @Test func parkedPollsHoldNoDatabaseConnection() async throws {
            try await Platform.run { p in
                // The harness's pool has 4 connections; 8 parked polls must not starve anyone.
                let (t, app) = try await Self.setUp(p)
                let packages = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<8 { group.addTask { try await p.readyPackage(app: app, token: t.token).guid } }
                    var all: [String] = []
                    for try await package in group { all.append(package) }
                    return all
                }
                let clock = ContinuousClock()
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for i in 0..<8 { group.addTask { try await p.poll("stager-\(i)", wait: 60).jobs.count } }
                    try await p.waitForSubscribers(8)
                    try await Task.sleep(for: .milliseconds(300))
                    // Polls holding connections would keep it waiting for their 60 s.
                    let busy = clock.now
                    #expect(try await p.get("/v3/apps", t.token).status == .ok)
                    #expect(clock.now - busy < .seconds(30), "an ordinary request is served while polls are parked")
                    let woke = clock.now
                    for package in packages { #expect(try await p.build(package: package, token: t.token).status == .created) }
                    var claimed = 0
                    for try await count in group { claimed += count }
                    #expect(claimed == 8, "each parked poll took one build")
                    #expect(clock.now - woke < .seconds(30))
                }
            }
        }

        @Test func aBuildTheStagerNoLongerReportsIsLost() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                let kept = try await p.queuedBuild(app: app, token: t.token)
                let dropped = try await p.queuedBuild(app: app, token: t.token)
                #expect(try await p.poll("stager-1", slots: 2).jobs.count == 2)
                // Still reported: nothing happens.
                _ = try await p.poll("stager-1", slots: 0, running: [kept, dropped])
                #expect(try await p.get("/v3/builds/\(dropped)", t.token).json["state"] as? String == "STAGING")
                // Restarted and knows only one of them.
                _ = try await p.poll("stager-1", slots: 0, running: [kept])
                let lost = try await p.get("/v3/builds/\(dropped)", t.token).json
                #expect(lost["state"] as? String == "FAILED")
                #expect(lost["error"] as? String == "StagingError - the stager stager-1 lost the build (it restarted?)")
                #expect(try await p.get("/v3/builds/\(kept)", t.token).json["state"] as? String == "STAGING")
                // The lost build's calls answer 404, so a stager still holding it gives up.
                #expect(try await p.fetch("/internal/v1/staging/\(dropped)/package").status == .notFound)
                #expect(try await p.putBlob(dropped, "droplet", try makeDroplet()).status == .notFound)
                #expect(try await p.complete(dropped, .failed(.stagingError, "late", duration: 1)).status == .notFound)
                let logs = try await p.get("/v3/apps/\(app)/logs?recent", t.token).body
                #expect(logs.contains("lost the build"))
            }
        }

        @Test func aStagedBuildBecomesADropletAndItsCacheServesTheNextBuild() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                let (package, bits) = try await p.readyPackage(app: app, token: t.token, files: [("Gemfile", "source 'x'")])
                let build = try await p.build(package: package, token: t.token).guid
                let job = try await p.claim()
                #expect(job.packageSHA256 == (try sha256(bits)))
                #expect(job.cacheSHA256 == nil)

                // The package's bits, exactly, with their digest; no cache yet.
                let fetched = try await p.fetch("/internal/v1/staging/\(build)/package")
                #expect(fetched.status == .ok)
                #expect(fetched.bytes == bits)
                #expect(fetched.headers[HTTPField.Name("X-Content-SHA256")!] == job.packageSHA256)
                #expect(try await p.fetch("/internal/v1/staging/\(build)/cache").status == .notFound)

                // Log lines the stager ships are the app's staging log.
                let shipped = try await p.ship([LogLine(appGUID: app, timestamp: 1_700_000_000_000_000_000, sourceType: StagingProtocol.logSourceType,
                                                        sourceInstance: "0", messageType: .out, message: "-----> Ruby app detected")])
                #expect(shipped.status == .ok)
                let page = try JSONDecoder().decode(AppLogPage.self, from: Data(try await p.get("/v3/apps/\(app)/logs?recent", t.token).body.utf8))
                #expect(page.lines.contains { $0.sourceType == "STG" && $0.message == "-----> Ruby app detected" })

                // Success needs the droplet first.
                let early = try await p.complete(build, .staged(Platform.rubySuccess, duration: 1))
                #expect(early.status == .unprocessableContent)
                #expect(early.errorDetail.contains("droplet was not uploaded"))

                let droplet = try makeDroplet()
                let cache = try makeDroplet(files: [("vendor/bundle/gems.txt", "rack 3.0")])
                let storedDroplet = try await p.putBlob(build, "droplet", droplet)
                #expect(storedDroplet.status == .ok)
                let stored = try JSONDecoder().decode(StagingBlobStored.self, from: Data(storedDroplet.body.utf8))
                #expect(stored == StagingBlobStored(sha256: try sha256(droplet), sizeBytes: droplet.count))
                #expect(try await p.putBlob(build, "cache", cache).status == .ok)
                // Uploads of a build still staging are referenced: the janitor keeps them.
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0).isEmpty)

                let done = try await p.complete(build, .staged(Platform.rubySuccess, duration: 12.5))
                #expect(done.status == .noContent, "\(done.body)")
                let staged = try await p.get("/v3/builds/\(build)", t.token).json
                #expect(staged["state"] as? String == "STAGED")
                #expect(staged["error"] is NSNull)
                let dropletGuid = (staged["droplet"] as? [String: Any])?["guid"] as? String ?? ""
                #expect(((staged["links"] as? [String: Any])?["droplet"] as? [String: Any])?["href"] as? String
                        == "\(Platform.baseURL)/v3/droplets/\(dropletGuid)")
                let shown = try await p.get("/v3/droplets/\(dropletGuid)", t.token)
                #expect(shown.json["state"] as? String == "STAGED")
                #expect(shown.json["process_types"] as? [String: String] == ["web": "bundle exec rackup -p $PORT", "worker": "bundle exec sidekiq"])
                #expect((shown.json["checksum"] as? [String: Any])?["value"] as? String == stored.sha256)
                #expect(shown.json["stack"] as? String == "cflike-host")
                #expect(shown.json["execution_metadata"] as? String == "")
                let buildpacks = shown.json["buildpacks"] as? [[String: Any]] ?? []
                #expect(buildpacks.count == 1)
                #expect(buildpacks.first?["name"] as? String == "ruby" && buildpacks.first?["detect_output"] as? String == "ruby 1.2.3")
                #expect(buildpacks.first?["buildpack_name"] as? String == "ruby" && buildpacks.first?["version"] as? String == "1.2.3")
                #expect((((shown.json["relationships"] as? [String: Any])?["package"] as? [String: Any])?["data"] as? [String: Any])?["guid"] as? String == package)
                let events = try await p.get("/v3/audit_events?types=audit.app.droplet.create&target_guids=\(app)", p.adminToken)
                #expect(events.resources.count == 1 && events.body.contains(dropletGuid))
                #expect(((events.resources.first?["actor"] as? [String: Any])?["name"] as? String) == "alice")
                // The droplet can become current, and agents can download it.
                #expect(try await p.patch("/v3/apps/\(app)/relationships/current_droplet", t.token, #"{"data":{"guid":"\#(dropletGuid)"}}"#).status == .ok)
                let download = try await p.fetch("/internal/v1/droplets/\(dropletGuid)/download")
                #expect(download.status == .ok && download.bytes == droplet)

                // Finished: every call about the build answers 404.
                #expect(try await p.fetch("/internal/v1/staging/\(build)/package").status == .notFound)
                #expect(try await p.fetch("/internal/v1/staging/\(build)/cache").status == .notFound)
                #expect(try await p.putBlob(build, "droplet", droplet).status == .notFound)
                #expect(try await p.putBlob(build, "cache", cache).status == .notFound)
                #expect(try await p.complete(build, .staged(Platform.rubySuccess, duration: 1)).status == .notFound)
                #expect(try await p.count("droplets") == 1)

                // The next build starts from the cache.
                let next = try await p.queuedBuild(app: app, token: t.token)
                let nextJob = try await p.claim("stager-2")
                #expect(nextJob.buildGUID == next)
                #expect(nextJob.cacheSHA256 == (try sha256(cache)))
                let served = try await p.fetch("/internal/v1/staging/\(next)/cache")
                #expect(served.status == .ok && served.bytes == cache)
                #expect(served.headers[HTTPField.Name("X-Content-SHA256")!] == nextJob.cacheSHA256)
            }
        }

        @Test func aFailedBuildCarriesCFsErrorAndNoDroplet() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                let build = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.claim()
                #expect(try await p.putBlob(build, "droplet", try makeDroplet()).status == .ok)
                let r = try await p.complete(build, .failed(.noAppDetected, "An app was not successfully detected by any available buildpack", duration: 3))
                #expect(r.status == .noContent)
                let failed = try await p.get("/v3/builds/\(build)", t.token).json
                #expect(failed["state"] as? String == "FAILED")
                #expect(failed["error"] as? String == "NoAppDetectedError - An app was not successfully detected by any available buildpack")
                #expect(failed["droplet"] is NSNull)
                #expect(try await p.count("droplets") == 0)
                #expect(try await p.complete(build, .failed(.stagingError, "again", duration: 1)).status == .notFound)
                // The droplet uploaded for it is garbage now.
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0).count == 1)
                // Bad results.
                let other = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.claim()
                #expect(try await p.component(.post, "/internal/v1/staging/\(other)/complete", json: #"{"duration_seconds":1}"#).status == .unprocessableContent)
                let multiline = try await p.complete(other, .failed(.buildpackCompileFailed, "line one\n\u{1b}[31mline two\u{7}", duration: 1))
                #expect(multiline.status == .noContent)
                #expect(try await p.get("/v3/builds/\(other)", t.token).json["error"] as? String == "BuildpackCompileFailed - line one\nline two", "the colour code goes whole")
            }
        }

        @Test func hostileOrOversizedUploadsAreRefused() async throws {
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_MAX_DROPLET_BYTES": "65536"]) { p in
                let (t, app) = try await Self.setUp(p)
                let build = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.claim()
                let before = Set(p.blobFiles())
                for (name, droplet) in [("link out of the root", try makeDroplet(links: [("app/evil", "/")])),
                                        ("dot-dot entry", try makeDroplet(files: [("app/ok", "x"), ("../evil", "x")])),
                                        ("absolute entry", try makeDroplet(files: [("/etc/evil", "x")]))] {
                    let r = try await p.putBlob(build, "droplet", droplet)
                    #expect(r.status == .unprocessableContent, "\(name): \(r.status) \(r.body)")
                    #expect(r.errorTitle == "CF-AppBitsUploadInvalid", "\(name)")
                    #expect(r.errorDetail.contains("evil"), "\(name): names the entry: \(r.errorDetail)")
                    #expect(try await p.putBlob(build, "cache", droplet).status == .unprocessableContent, "\(name) as a cache")
                }
                var random = SystemRandomNumberGenerator()
                let big = Data((0..<70_000).map { _ in UInt8.random(in: 0...255, using: &random) })
                #expect(try await p.putBlob(build, "droplet", big).status == .contentTooLarge)
                #expect(try await p.putBlob(build, "droplet", Data()).status == .unprocessableContent)
                #expect(try await p.putBlob(build, "droplet", Data("not an archive".utf8)).status == .unprocessableContent)
                #expect(Set(p.blobFiles()) == before, "nothing stored")
                let row = try await p.pool.query("SELECT droplet_blob_sha256, cache_blob_sha256, state FROM builds WHERE guid = $1", [build]).rows[0]
                #expect(try row.decode("droplet_blob_sha256", as: String?.self) == nil && row.decode("cache_blob_sha256", as: String?.self) == nil)
                #expect(try row.decode("state", as: String.self) == "STAGING")
                #expect(!FileManager.default.fileExists(atPath: "/etc/evil"))
            }
        }

        @Test func anAppKeepsItsFiveNewestDropletsAndItsCurrentOne() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                var droplets: [String] = []
                for i in 0..<7 {
                    let build = try await p.queuedBuild(app: app, token: t.token)
                    _ = try await p.claim("stager-\(i)")
                    try await p.stage(build, droplet: try makeDroplet(files: [("app/v", "\(i)")]))
                    droplets.append(try await p.get("/v3/builds/\(build)", t.token).json["droplet"].flatMap { ($0 as? [String: Any])?["guid"] as? String } ?? "")
                }
                func kept() async throws -> [String] {
                    try await p.get("/v3/apps/\(app)/droplets?order_by=created_at&per_page=50", t.token).resources.compactMap { $0["guid"] as? String }
                }
                #expect(try await kept() == Array(droplets[2...]), "five newest, no current droplet")
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0).count == 2,
                        "the pruned droplets' blobs go")
                // The current droplet is kept however old it gets, and counts among the five.
                #expect(try await p.patch("/v3/apps/\(app)/relationships/current_droplet", t.token, #"{"data":{"guid":"\#(droplets[2])"}}"#).status == .ok)
                for i in 7..<9 {
                    let build = try await p.queuedBuild(app: app, token: t.token)
                    _ = try await p.claim("stager-\(i)")
                    try await p.stage(build, droplet: try makeDroplet(files: [("app/v", "\(i)")]))
                    droplets.append(try await p.get("/v3/builds/\(build)", t.token).json["droplet"].flatMap { ($0 as? [String: Any])?["guid"] as? String } ?? "")
                }
                #expect(try await kept() == [droplets[2]] + Array(droplets[5...]))
            }
        }

        @Test func clearingTheBuildpackCacheStartsTheNextBuildWithoutOne() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                let build = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.claim()
                let cache = try makeDroplet(files: [("cache/deps.txt", "node 20")])
                try await p.stage(build, cache: cache)
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0).isEmpty,
                        "the app's cache is referenced")
                #expect(blobstore.exists(try sha256(cache)))
                // Only a space developer clears it.
                let (carol, carolToken) = try await p.user("carol")
                try await p.role("organization_user", user: carol, org: t.org)
                try await p.role("space_auditor", user: carol, space: t.space)
                #expect(try await p.post("/v3/apps/\(app)/actions/clear_buildpack_cache", carolToken, "{}").status == .forbidden)
                #expect(try await p.post("/v3/apps/\(app)/actions/clear_buildpack_cache", (try await p.tenant("bob")).token, "{}").status == .notFound)
                let cleared = try await p.post("/v3/apps/\(app)/actions/clear_buildpack_cache", t.token, "{}")
                #expect(cleared.status == .accepted)
                let job = try #require(cleared.headers[.location])
                #expect(try await p.get(String(job.dropFirst(Platform.baseURL.count)), t.token).json["state"] as? String == "COMPLETE")
                _ = try await p.queuedBuild(app: app, token: t.token)
                let next = try await p.claim("stager-2")
                #expect(next.cacheSHA256 == nil)
                #expect(try await p.fetch("/internal/v1/staging/\(next.buildGUID)/cache").status == .notFound)
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0) == [try sha256(cache)])
                #expect(try await p.get("/v3/audit_events?types=audit.app.buildpack_cache.delete", p.adminToken).resources.count == 1)
            }
        }

        @Test func theMonitorFailsBuildsOfSilentStagersAndBuildsNoStagerCanTake() async throws {
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_STAGER_LOST_AFTER_SECONDS": "3"]) { p in
                let (t, app) = try await Self.setUp(p)
                #expect(try await p.post("/v3/stacks", p.adminToken, #"{"name":"another-stack"}"#).status == .created)
                let silent = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.claim("stager-silent")
                let chatty = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.claim("stager-chatty")
                let parked = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.claim("stager-parked")
                let orphan = try await p.queuedBuild(app: app, token: t.token, extra: #""lifecycle":{"type":"buildpack","data":{"stack":"another-stack"}}"#)
                let sweep = { try await StagingMonitor.sweep(Database(pool: p.pool), lostAfterSeconds: p.config.stagerLostAfterSeconds, keepLogLines: 100) }
                // The set-up above may take a while on a loaded machine: every stager is heard from
                // again here, so the 3 s count from now.
                for (stager, build) in [("stager-silent", silent), ("stager-chatty", chatty), ("stager-parked", parked)] {
                    _ = try await p.poll(stager, slots: 0, running: [build])
                }
                #expect(try await sweep().isEmpty, "everyone was heard from just now")

                // One stager parks a long poll (it has room for more), one heartbeats, one is silent.
                // The silent one is 3.5 s quiet at the sweep, the chatty one 1.5 s (plus however
                // long its heartbeat takes), and the parked poll lasts till well after the sweep.
                async let parkedPoll = p.poll("stager-parked", slots: 1, running: [parked], wait: 8)
                try await Task.sleep(for: .milliseconds(2000))
                _ = try await p.poll("stager-chatty", slots: 0, running: [chatty])
                try await Task.sleep(for: .milliseconds(1500))
                let failed = try await sweep()
                #expect(Set(failed) == [silent, orphan])
                #expect(try await sweep().isEmpty, "a failed build is failed once")
                let lost = try await p.get("/v3/builds/\(silent)", t.token).json["error"] as? String
                #expect(lost == "StagingError - the stager stager-silent stopped polling for more than 3 seconds and was lost")
                let none = try await p.get("/v3/builds/\(orphan)", t.token).json["error"] as? String
                #expect(none == "StagingError - no stager for stack another-stack is running")
                for build in [chatty, parked] {
                    #expect(try await p.get("/v3/builds/\(build)", t.token).json["state"] as? String == "STAGING")
                }
                #expect(try await p.fetch("/internal/v1/staging/\(silent)/package").status == .notFound)
                #expect(try await parkedPoll.jobs.isEmpty)
                let logs = try await p.get("/v3/apps/\(app)/logs?recent", t.token).body
                #expect(logs.contains("stager-silent stopped polling"))
            }
        }

        @Test func theMonitorFailsBuildsThatOutliveTheirTimeout() async throws {
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_STAGING_TIMEOUT_SECONDS": "1"]) { p in
                let (t, app) = try await Self.setUp(p)
                let build = try await p.queuedBuild(app: app, token: t.token)
                let job = try await p.claim()
                #expect(job.timeoutSeconds == 1)
                try await Task.sleep(for: .milliseconds(1200))
                _ = try await p.poll("stager-1", slots: 0, running: [build])  // alive, just slow
                #expect(try await StagingMonitor.sweep(Database(pool: p.pool), lostAfterSeconds: 30, keepLogLines: 100).isEmpty, "the grace period still runs")
                #expect(try await StagingMonitor.sweep(Database(pool: p.pool), lostAfterSeconds: 30, timeoutGraceSeconds: 0, keepLogLines: 100) == [build])
                #expect(try await p.get("/v3/builds/\(build)", t.token).json["error"] as? String
                        == "StagingTimeExpired - staging did not finish within 1 seconds")
                // A build no stager took within its timeout fails too.
                let queued = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.poll("stager-1", slots: 0, running: [])
                try await Task.sleep(for: .milliseconds(1200))
                #expect(try await StagingMonitor.sweep(Database(pool: p.pool), lostAfterSeconds: 30, keepLogLines: 100) == [queued])
                #expect(try await p.get("/v3/builds/\(queued)", t.token).json["error"] as? String
                        == "StagingError - no stager took the build within 1 seconds")
            }
        }

        @Test func deletingTheAppTakesItsBuildsAlong() async throws {
            try await Platform.run { p in
                let (t, app) = try await Self.setUp(p)
                let build = try await p.queuedBuild(app: app, token: t.token)
                _ = try await p.claim()
                #expect(try await p.putBlob(build, "droplet", try makeDroplet()).status == .ok)
                #expect(try await p.delete("/v3/apps/\(app)", t.token).status == .accepted)
                #expect(try await p.count("builds") == 0)
                #expect(try await p.fetch("/internal/v1/staging/\(build)/package").status == .notFound)
                #expect(try await p.complete(build, .staged(Platform.rubySuccess, duration: 1)).status == .notFound)
                #expect(try await p.poll("stager-1", slots: 1, running: [build]).jobs.isEmpty)
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0).count == 2,
                        "the package and the uploaded droplet go")
            }
        }
    }
}
