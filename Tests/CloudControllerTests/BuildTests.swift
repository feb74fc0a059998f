import Foundation
import PlatformModels
import Testing

@testable import CloudController

extension ControllerIntegration {
    @Suite struct Builds {
        @Test func creatingABuildNeedsAReadyPackageAndASpaceDeveloper() async throws {
            try await Platform.run { p in
                try await p.adminBuildpack("ruby", url: "https://git.example.com/ruby-buildpack.git")
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let package = try await p.package(app: app, token: t.token)
                let notReady = try await p.build(package: package, token: t.token)
                #expect(notReady.status == .unprocessableContent)
                #expect(notReady.errorDetail.contains("AWAITING_UPLOAD") && notReady.errorDetail.contains("READY"), "\(notReady.errorDetail)")
                #expect(try await p.count("builds") == 0)
                #expect(try await p.upload(package, t.token, bits: try makeZip([("a.txt", "a")])).status == .ok)

                let created = try await p.build(package: package, token: t.token)
                #expect(created.status == .created, "\(created.body)")
                let build = created.json
                #expect(build["state"] as? String == "STAGING")
                #expect(build["error"] is NSNull)
                #expect(build["droplet"] is NSNull)
                #expect((build["package"] as? [String: Any])?["guid"] as? String == package)
                #expect(build["staging_memory_in_mb"] as? Int == 1024)
                #expect(build["staging_disk_in_mb"] as? Int == 4096)
                let createdBy = build["created_by"] as? [String: Any]
                #expect(createdBy?["guid"] as? String == t.user && createdBy?["name"] as? String == "alice")
                let lifecycle = build["lifecycle"] as? [String: Any]
                #expect(lifecycle?["type"] as? String == "buildpack")
                #expect((lifecycle?["data"] as? [String: Any])?["stack"] as? String == "cflike-host")
                #expect((lifecycle?["data"] as? [String: Any])?["buildpacks"] as? [String] == [])
                #expect((((build["relationships"] as? [String: Any])?["app"] as? [String: Any])?["data"] as? [String: Any])?["guid"] as? String == app)
                let links = build["links"] as? [String: Any]
                #expect((links?["self"] as? [String: Any])?["href"] as? String == "\(Platform.baseURL)/v3/builds/\(created.guid)")
                #expect((links?["app"] as? [String: Any])?["href"] as? String == "\(Platform.baseURL)/v3/apps/\(app)")
                #expect(links?["droplet"] == nil, "no droplet link before the build is STAGED")
                #expect(try await p.get("/v3/builds/\(created.guid)", t.token).guid == created.guid)

                // Sizes from the request, bounded by the process ceilings.
                let sized = try await p.build(package: package, token: t.token, extra: #""staging_memory_in_mb":2048,"staging_disk_in_mb":512"#)
                #expect(sized.json["staging_memory_in_mb"] as? Int == 2048 && sized.json["staging_disk_in_mb"] as? Int == 512)
                #expect(try await p.build(package: package, token: t.token, extra: #""staging_memory_in_mb":999999"#).status == .unprocessableContent)
                #expect(try await p.build(package: package, token: t.token, extra: #""colour":"red""#).status == .unprocessableContent)

                // Another tenant can neither use the package nor see the builds.
                let b = try await p.tenant("bob")
                let foreign = try await p.build(package: package, token: b.token)
                #expect(foreign.status == .unprocessableContent)
                #expect(foreign.errorDetail == BuildsController.unusablePackage)
                #expect(try await p.get("/v3/builds/\(created.guid)", b.token).status == .notFound)
                #expect(try await p.get("/v3/builds", b.token).resources.isEmpty)
                #expect(try await p.get("/v3/apps/\(app)/builds", b.token).status == .notFound)

                // An auditor of the space sees builds but may not create one.
                let (carol, carolToken) = try await p.user("carol")
                try await p.role("organization_user", user: carol, org: t.org)
                try await p.role("space_auditor", user: carol, space: t.space)
                #expect(try await p.build(package: package, token: carolToken).status == .forbidden)
                #expect(try await p.get("/v3/builds/\(created.guid)", carolToken).status == .ok)

                // Lists and their filters.
                let other = try await p.app("other", space: t.space, token: t.token)
                let otherBuild = try await p.queuedBuild(app: other, token: t.token)
                #expect(try await p.get("/v3/builds", t.token).resources.count == 3)
                let forApp = try await p.get("/v3/apps/\(other)/builds", t.token).resources.compactMap { $0["guid"] as? String }
                #expect(forApp == [otherBuild])
                #expect(try await p.get("/v3/builds?app_guids=\(app)", t.token).resources.count == 2)
                #expect(try await p.get("/v3/builds?package_guids=\(package)", t.token).resources.count == 2)
                #expect(try await p.get("/v3/builds?states=STAGED", t.token).resources.isEmpty)
                #expect(try await p.get("/v3/builds?states=STAGING&per_page=1", t.token).pagination["total_pages"] as? Int == 3)
                #expect(try await p.get("/v3/builds?app_guids=nope", t.token).status == .badRequest)
                #expect(try await p.get("/v3/builds?order_by=-updated_at", t.token).status == .ok)

                let events = try await p.get("/v3/audit_events?types=audit.app.build.create&target_guids=\(app)", p.adminToken)
                #expect(events.resources.count == 2)
                #expect(events.body.contains(created.guid))
            }
        }

        @Test func withoutNamedBuildpacksEveryEnabledAdminBuildpackForTheStackIsTriedInPositionOrder() async throws {
            try await Platform.run { p in
                try await p.adminBuildpack("go", url: "https://git.example.com/go-buildpack.git")
                try await p.adminBuildpack("python", url: "https://git.example.com/python-buildpack.git#v2")
                try await p.adminBuildpack("ruby", url: "https://deploy:adm1n-s3cret@git.example.com/ruby-buildpack.git", position: 1)
                try await p.adminBuildpack("off", url: "https://git.example.com/off.git", enabled: false)
                try await p.adminBuildpack("elsewhere", url: "https://git.example.com/elsewhere.git", stack: "another-stack")
                try await p.adminBuildpack("host-only", url: "https://git.example.com/host.git", position: 2, stack: "cflike-host")
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let build = try await p.queuedBuild(app: app, token: t.token)
                let job = try await p.claim()
                #expect(job.buildGUID == build)
                #expect(job.detect)
                #expect(job.buildpacks.map(\.name) == ["ruby", "host-only", "go", "python"])
                #expect(job.buildpacks.allSatisfy { $0.trusted })
                // The stager gets the real URLs; what is shown stays redacted.
                #expect(job.buildpacks[0].url == "https://deploy:adm1n-s3cret@git.example.com/ruby-buildpack.git")
                #expect(job.buildpacks[0].displayURL == "https://***@git.example.com/ruby-buildpack.git")
                #expect(job.buildpacks[3].url == "https://git.example.com/python-buildpack.git#v2")
                let shown = try await p.get("/v3/builds/\(build)", t.token)
                #expect(((shown.json["lifecycle"] as? [String: Any])?["data"] as? [String: Any])?["buildpacks"] as? [String] == [])
                #expect(!(try await p.get("/v3/apps/\(app)/logs?recent", t.token).body.contains("adm1n-s3cret")))
                // The rest of the job.
                #expect(job.appGUID == app && job.appName == "web" && job.spaceGUID == t.space && job.organizationGUID == t.org)
                #expect(job.spaceName == "space-alice" && job.organizationName == "org-alice" && job.stack == "cflike-host")
                #expect(job.cacheSHA256 == nil && job.startCommand == nil && job.environment.isEmpty)
                #expect(job.memoryMB == 1024 && job.diskMB == 4096 && job.timeoutSeconds == 900)
            }
        }

        @Test func theJobCarriesTheAppsEnvironmentAndStartCommand() async throws {
            try await Platform.run { p in
                try await p.adminBuildpack("ruby", url: "https://git.example.com/ruby-buildpack.git")
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                #expect(try await p.patch("/v3/apps/\(app)/environment_variables", t.token, #"{"var":{"RACK_ENV":"production","SECRET":"x"}}"#).status == .ok)
                let web = try await p.get("/v3/apps/\(app)/processes/web", t.token).guid
                #expect(try await p.patch("/v3/processes/\(web)", t.token, #"{"command":"./bin/serve --port $PORT"}"#).status == .ok)
                _ = try await p.queuedBuild(app: app, token: t.token, extra: #""staging_memory_in_mb":1536"#)
                let job = try await p.claim()
                #expect(job.environment == ["RACK_ENV": "production", "SECRET": "x"])
                #expect(job.startCommand == "./bin/serve --port $PORT")
                #expect(job.memoryMB == 1536)
            }
        }

        @Test func namedAdminBuildpacksRunWithoutDetect() async throws {
            try await Platform.run { p in
                try await p.adminBuildpack("go", url: "https://git.example.com/go-buildpack.git")
                try await p.adminBuildpack("ruby", url: "https://git.example.com/ruby-buildpack.git")
                try await p.adminBuildpack("node", url: "https://git.example.com/node-buildpack.git")
                try await p.adminBuildpack("off", url: "https://git.example.com/off.git", enabled: false)
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                // The app's own lifecycle.
                let updated = try await p.patch("/v3/apps/\(app)", t.token, #"{"lifecycle":{"type":"buildpack","data":{"buildpacks":["node","ruby"]}}}"#)
                #expect(updated.status == .ok, "\(updated.body)")
                let build = try await p.queuedBuild(app: app, token: t.token)
                let job = try await p.claim()
                #expect(!job.detect)
                #expect(job.buildpacks.map(\.name) == ["node", "ruby"])
                #expect(job.buildpacks.map(\.url) == ["https://git.example.com/node-buildpack.git", "https://git.example.com/ruby-buildpack.git"])
                #expect(((try await p.get("/v3/builds/\(build)", t.token).json["lifecycle"] as? [String: Any])?["data"] as? [String: Any])?["buildpacks"] as? [String] == ["node", "ruby"])
                // The build's lifecycle wins over the app's.
                _ = try await p.queuedBuild(app: app, token: t.token, extra: #""lifecycle":{"type":"buildpack","data":{"buildpacks":["go"]}}"#)
                let second = try await p.claim("stager-2")
                #expect(second.buildpacks.map(\.name) == ["go"] && !second.detect)
                // A disabled buildpack cannot be named for a build.
                let package = try await p.readyPackage(app: app, token: t.token).guid
                let disabled = try await p.build(package: package, token: t.token, extra: #""lifecycle":{"type":"buildpack","data":{"buildpacks":["off"]}}"#)
                #expect(disabled.status == .unprocessableContent)
                #expect(disabled.errorDetail.contains("'off' is disabled"))
            }
        }

        @Test func aGitURLWithCredentialsReachesTheStagerOnly() async throws {
            try await Platform.run { p in
                let token = "ghp_t0ps3cretT0ken"
                let url = "https://x-access-token:\(token)@github.example.com/acme/buildpack.git#v1.2"
                let redacted = "https://***@github.example.com/acme/buildpack.git#v1.2"
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let updated = try await p.patch("/v3/apps/\(app)", t.token, #"{"lifecycle":{"type":"buildpack","data":{"buildpacks":["\#(url)"]}}}"#)
                #expect(updated.status == .ok, "\(updated.body)")
                #expect(!updated.body.contains(token))
                #expect(((updated.json["lifecycle"] as? [String: Any])?["data"] as? [String: Any])?["buildpacks"] as? [String] == [redacted])
                #expect(!(try await p.get("/v3/apps/\(app)", t.token).body.contains(token)))

                let created = try await p.build(package: try await p.readyPackage(app: app, token: t.token).guid, token: t.token)
                #expect(created.status == .created, "\(created.body)")
                #expect(!created.body.contains(token))
                #expect(((created.json["lifecycle"] as? [String: Any])?["data"] as? [String: Any])?["buildpacks"] as? [String] == [redacted])

                let job = try await p.claim()
                #expect(job.buildpacks == [StagingBuildpack(name: nil, url: url, displayURL: redacted, trusted: false)])
                #expect(!job.detect)
                #expect(!"\(job.buildpacks[0])".contains(token) && !String(reflecting: job.buildpacks[0]).contains(token))

                // A failure that quotes the URL or the token is stored redacted.
                let failed = try await p.complete(job.buildGUID, .failed(
                    .buildpackFetchFailed, "git clone \(url) failed: authentication with \(token) refused", duration: 2))
                #expect(failed.status == .noContent)
                let error = try await p.get("/v3/builds/\(job.buildGUID)", t.token).json["error"] as? String ?? ""
                #expect(error.hasPrefix("BuildpackFetchFailed - git clone \(redacted) failed"), "\(error)")
                #expect(!error.contains(token))

                // Nowhere else either: audit events, the app's log, the database.
                #expect(!(try await p.get("/v3/audit_events?per_page=100", p.adminToken).body.contains(token)))
                let logs = try await p.get("/v3/apps/\(app)/logs?recent", t.token).body
                #expect(logs.contains(redacted) && !logs.contains(token))
                for table in ["apps", "builds", "audit_events", "app_log_lines"] {
                    #expect(!(try await p.dump(table).contains(token)), "\(table) holds the token in the clear")
                }
            }
        }

        @Test func sourcesAnAppMayNotUseAreRefused() async throws {
            try await Platform.run { p in
                try await p.adminBuildpack("local", url: "file:///srv/buildpacks/local")
                let t = try await p.tenant("alice")
                let space = t.space
                func lifecycle(_ bp: String) -> String { #"{"type":"buildpack","data":{"buildpacks":["\#(bp)"]}}"# }
                let created = try await p.post("/v3/apps", t.token,
                                               #"{"name":"web","relationships":{"space":{"data":{"guid":"\#(space)"}}},"lifecycle":\#(lifecycle("file:///etc/buildpack"))}"#)
                #expect(created.status == .unprocessableContent)
                #expect(created.errorDetail.contains("file:///etc/buildpack") && created.errorDetail.contains("administrator"), "\(created.errorDetail)")
                #expect(try await p.count("apps") == 0)
                let app = try await p.app("web", space: space, token: t.token)
                for (bp, hint) in [("/opt/buildpack", "administrator"), ("http://git.example.com/bp.git", "use https"),
                                   ("git@github.com:acme/bp.git", "use https"), ("no_such_buildpack", "admin buildpack")] {
                    let r = try await p.patch("/v3/apps/\(app)", t.token, #"{"lifecycle":\#(lifecycle(bp))}"#)
                    #expect(r.status == .unprocessableContent, "\(bp)")
                    #expect(r.errorDetail.contains(hint), "\(bp): \(r.errorDetail)")
                }
                // Credentials of a refused URL are not echoed.
                let http = try await p.patch("/v3/apps/\(app)", t.token, #"{"lifecycle":\#(lifecycle("http://me:pl4intext-pw@git.example.com/bp.git"))}"#)
                #expect(http.status == .unprocessableContent)
                #expect(!http.body.contains("pl4intext-pw") && http.errorDetail.contains("***"), "\(http.errorDetail)")
                let odd = try await p.patch("/v3/apps/\(app)", t.token, #"{"lifecycle":\#(lifecycle("ftp://me:0dd-s3cret@host/bp"))}"#)
                #expect(odd.status == .unprocessableContent && !odd.body.contains("0dd-s3cret"), "\(odd.body)")
                // The same for a build's lifecycle.
                let package = try await p.readyPackage(app: app, token: t.token).guid
                let build = try await p.build(package: package, token: t.token, extra: #""lifecycle":\#(lifecycle("file:///etc/buildpack"))"#)
                #expect(build.status == .unprocessableContent)
                #expect(try await p.count("builds") == 0)
                // An administrator's local buildpack may be named: it is trusted.
                #expect(try await p.patch("/v3/apps/\(app)", t.token, #"{"lifecycle":\#(lifecycle("local"))}"#).status == .ok)
                _ = try await p.queuedBuild(app: app, token: t.token)
                let job = try await p.claim()
                #expect(job.buildpacks == [StagingBuildpack(name: "local", url: "file:///srv/buildpacks/local",
                                                            displayURL: "file:///srv/buildpacks/local", trusted: true)])
            }
        }

        @Test func plainHTTPGitHostsMayBeAllowedByConfiguration() async throws {
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_GIT_HTTP_HOSTS": "git.internal:8080, Mirror.Example"]) { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                func lifecycle(_ bp: String) -> String { #"{"lifecycle":{"type":"buildpack","data":{"buildpacks":["\#(bp)"]}}}"# }
                #expect(try await p.patch("/v3/apps/\(app)", t.token, lifecycle("http://git.internal:8080/bp.git")).status == .ok)
                #expect(try await p.patch("/v3/apps/\(app)", t.token, lifecycle("http://mirror.example/bp.git#v2")).status == .ok)
                let other = try await p.patch("/v3/apps/\(app)", t.token, lifecycle("http://git.example.com/bp.git"))
                #expect(other.status == .unprocessableContent, "only the listed hosts: \(other.body)")
                #expect(try await p.patch("/v3/apps/\(app)", t.token, lifecycle("file:///srv/bp")).status == .unprocessableContent,
                        "local sources stay an administrator's")
            }
        }

        @Test func withNoBuildpackAtAllTheBuildFailsAtOnce() async throws {
            try await Platform.run { p in
                try await p.adminBuildpack("other-stack-only", url: "https://git.example.com/x.git", stack: "another-stack")
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let package = try await p.readyPackage(app: app, token: t.token).guid
                let r = try await p.build(package: package, token: t.token)
                #expect(r.status == .created)
                #expect(r.json["state"] as? String == "FAILED")
                let error = r.json["error"] as? String ?? ""
                #expect(error.hasPrefix("NoAppDetectedError - An app was not successfully detected by any available buildpack"), "\(error)")
                #expect(try await p.poll("stager-1").jobs.isEmpty)
                let logs = try JSONDecoder().decode(AppLogPage.self, from: Data(try await p.get("/v3/apps/\(app)/logs?recent", t.token).body.utf8))
                #expect(logs.lines.contains { $0.sourceType == "STG" && $0.messageType == .err && $0.message.contains("NoAppDetectedError") })
            }
        }
    }
}
