import Foundation
import HTTPTypes
import NIOCore
import PlatformModels
import Testing

@testable import CloudController

/// Builds, admin buildpacks and the calls a stager makes.
extension Platform {
    /// A package with uploaded bits (READY); returns (package, the bits).
    func readyPackage(app: String, token: String, files: [(String, String)] = [("index.html", "<h1>hi</h1>")]) async throws -> (guid: String, bits: Data) {
        let package = try await self.package(app: app, token: token)
        let zip = try makeZip(files)
        let r = try await upload(package, token, bits: zip)
        guard r.status == .ok else { throw TestFailure("upload package: \(r.status) \(r.body)") }
        return (package, zip)
    }

    /// `POST /v3/buildpacks` as admin.
    @discardableResult
    func adminBuildpack(_ name: String, url: String, position: Int? = nil, enabled: Bool = true, stack: String? = nil) async throws -> String {
        var fields = [#""name":"\#(name)""#, #""url":"\#(url)""#, #""enabled":\#(enabled)"#]
        if let position { fields.append(#""position":\#(position)"#) }
        if let stack { fields.append(#""stack":"\#(stack)""#) }
        let r = try await post("/v3/buildpacks", adminToken, "{\(fields.joined(separator: ","))}")
        guard r.status == .created else { throw TestFailure("create buildpack \(name): \(r.status) \(r.body)") }
        return r.guid
    }

    func build(package: String, token: String, extra: String = "") async throws -> Reply {
        try await post("/v3/builds", token, #"{"package":{"guid":"\#(package)"}\#(extra.isEmpty ? "" : ",")\#(extra)}"#)
    }

    /// A STAGING build of a fresh READY package of `app`; returns its guid.
    func queuedBuild(app: String, token: String, extra: String = "") async throws -> String {
        let package = try await readyPackage(app: app, token: token).guid
        let r = try await build(package: package, token: token, extra: extra)
        guard r.status == .created, r.json["state"] as? String == "STAGING" else { throw TestFailure("create build: \(r.status) \(r.body)") }
        return r.guid
    }

    func pollReply(_ stager: String, slots: Int = 1, running: [String] = [], wait: Int = 0,
                   stacks: [String] = ["cflike-host"]) async throws -> Reply {
        try await component(.post, "/internal/v1/stagers/\(stager)/poll", body: StagerPoll(
            freeSlots: slots, running: running, stacks: stacks, version: "test", waitSeconds: wait))
    }

    func poll(_ stager: String, slots: Int = 1, running: [String] = [], wait: Int = 0,
              stacks: [String] = ["cflike-host"]) async throws -> StagerPollAnswer {
        let r = try await pollReply(stager, slots: slots, running: running, wait: wait, stacks: stacks)
        guard r.status == .ok else { throw TestFailure("poll of \(stager): \(r.status) \(r.body)") }
        return try JSONDecoder().decode(StagerPollAnswer.self, from: Data(r.body.utf8))
    }

    /// Claims exactly the one queued build with a fresh stager; returns its job.
    func claim(_ stager: String = "stager-1") async throws -> StagingJob {
        let answer = try await poll(stager)
        guard answer.jobs.count == 1 else { throw TestFailure("expected one job, got \(answer.jobs.count)") }
        return answer.jobs[0]
    }

    /// A raw `PUT /internal/v1/staging/:build/droplet|cache`.
    func putBlob(_ build: String, _ kind: String, _ data: Data) async throws -> Reply {
        let r = try await client.execute(
            uri: "/internal/v1/staging/\(build)/\(kind)", method: .put,
            headers: [.authorization: "component \(Self.componentCredential)", .contentType: "application/octet-stream"],
            body: ByteBuffer(bytes: data))
        return Reply(status: r.status, headers: r.headers, body: String(buffer: r.body))
    }

    /// A raw `GET` of the internal API: status, headers and the exact bytes.
    func fetch(_ path: String) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, bytes: Data) {
        let r = try await client.execute(uri: path, method: .get, headers: [.authorization: "component \(Self.componentCredential)"], body: nil)
        return (r.status, r.headers, Data(r.body.readableBytesView))
    }

    func complete(_ build: String, _ result: StagingResult) async throws -> Reply {
        try await component(.post, "/internal/v1/staging/\(build)/complete", body: result)
    }

    static let rubySuccess = StagingResult.Success(
        processTypes: ["web": "bundle exec rackup -p $PORT", "worker": "bundle exec sidekiq"],
        buildpacks: [StagedBuildpack(name: "ruby", detectOutput: "ruby 1.2.3", buildpackName: "ruby", version: "1.2.3", commit: "abc123")],
        stack: "cflike-host", startCommand: "bundle exec rackup -p $PORT")

    /// Uploads a droplet (and optionally a cache) and completes the build successfully.
    func stage(_ build: String, droplet: Data? = nil, cache: Data? = nil,
               success: StagingResult.Success = Platform.rubySuccess) async throws {
        let stored = try await putBlob(build, "droplet", try droplet ?? makeDroplet())
        guard stored.status == .ok else { throw TestFailure("droplet upload: \(stored.status) \(stored.body)") }
        if let cache {
            let r = try await putBlob(build, "cache", cache)
            guard r.status == .ok else { throw TestFailure("cache upload: \(r.status) \(r.body)") }
        }
        let done = try await complete(build, .staged(success, duration: 1.5))
        guard done.status == .noContent else { throw TestFailure("complete: \(done.status) \(done.body)") }
    }

    /// Every column of every row of `table`, as text (to look for leaked secrets).
    func dump(_ table: String) async throws -> String {
        try await pool.query("SELECT coalesce(string_agg(row_to_json(t)::text, E'\\n'), '') AS d FROM \(table) t")
            .rows[0].decode("d", as: String.self)
    }
}
