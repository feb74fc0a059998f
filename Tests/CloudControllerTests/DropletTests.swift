import Foundation
import HTTPTypes
import NIOCore
import Testing

@testable import CloudController

/// A droplet tar.gz built with Python's tarfile; `links` are symlink entries (name, target).
func makeDroplet(files: [(String, String)] = [("app/server.sh", "echo hi"), ("staging_info.yml", "start_command: ./server.sh\n")],
                 links: [(String, String)] = []) throws -> Data {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("droplet-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let spec = dir.appendingPathComponent("spec.json")
    try JSONSerialization.data(withJSONObject: ["files": files.map { [$0.0, $0.1] }, "links": links.map { [$0.0, $0.1] }]).write(to: spec)
    let out = dir.appendingPathComponent("droplet.tgz")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", """
        import io, json, sys, tarfile
        spec = json.load(open(sys.argv[1]))
        with tarfile.open(sys.argv[2], "w:gz") as t:
            for name, content in spec["files"]:
                data = content.encode()
                info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o755
                t.addfile(info, io.BytesIO(data))
            for name, target in spec["links"]:
                info = tarfile.TarInfo(name); info.type = tarfile.SYMTYPE; info.linkname = target
                t.addfile(info)
        """, spec.path, out.path]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw TestFailure("python3 could not build the droplet") }
    return try Data(contentsOf: out)
}

extension Platform {
    /// Creates, uploads and assigns a droplet; returns its guid.
    @discardableResult
    func stagedDroplet(app: String, token: String, bits: Data? = nil, assign: Bool = true) async throws -> String {
        let created = try await post("/v3/droplets", token,
                                     #"{"relationships":{"app":{"data":{"guid":"\#(app)"}}},"process_types":{"web":"./server.sh"}}"#)
        guard created.status == .created else { throw TestFailure("create droplet: \(created.status) \(created.body)") }
        let (body, type) = multipart(bits: try bits ?? makeDroplet())
        let r = try await client.execute(uri: "/v3/droplets/\(created.guid)/upload", method: .post,
                                         headers: [.authorization: "bearer \(token)", .contentType: type], body: body)
        guard r.status == .accepted else { throw TestFailure("upload droplet: \(r.status) \(String(buffer: r.body))") }
        if assign {
            let set = try await patch("/v3/apps/\(app)/relationships/current_droplet", token, #"{"data":{"guid":"\#(created.guid)"}}"#)
            guard set.status == .ok else { throw TestFailure("assign droplet: \(set.status) \(set.body)") }
        }
        return created.guid
    }
}

extension ControllerIntegration {
    @Suite struct Droplets {
        @Test func uploadAssignAndStart() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let noDroplet = try await p.post("/v3/apps/\(app)/actions/start", t.token, "{}")
                #expect(noDroplet.status == .unprocessableContent)
                #expect(noDroplet.errorDetail == "Assign a droplet before starting this app.")
                let droplet = try await p.stagedDroplet(app: app, token: t.token)
                let shown = try await p.get("/v3/droplets/\(droplet)", t.token)
                #expect(shown.json["state"] as? String == "STAGED")
                #expect((shown.json["process_types"] as? [String: String]) == ["web": "./server.sh"])
                #expect(((shown.json["checksum"] as? [String: Any])?["value"] as? String)?.count == 64)
                #expect(try await p.get("/v3/apps/\(app)/droplets/current", t.token).guid == droplet)
                let rel = try await p.get("/v3/apps/\(app)/relationships/current_droplet", t.token)
                #expect((rel.json["data"] as? [String: Any])?["guid"] as? String == droplet)
                #expect(try await p.post("/v3/apps/\(app)/actions/start", t.token, "{}").json["state"] as? String == "STARTED")
                // Another tenant sees none of it.
                let b = try await p.tenant("bob")
                #expect(try await p.get("/v3/droplets/\(droplet)", b.token).status == .notFound)
                #expect(try await p.patch("/v3/apps/\(app)/relationships/current_droplet", b.token,
                                          #"{"data":{"guid":"\#(droplet)"}}"#).status == .notFound)
                // A droplet of another app cannot become current.
                let other = try await p.app("other", space: t.space, token: t.token)
                let foreign = try await p.stagedDroplet(app: other, token: t.token, assign: false)
                #expect(try await p.patch("/v3/apps/\(app)/relationships/current_droplet", t.token,
                                          #"{"data":{"guid":"\#(foreign)"}}"#).status == .unprocessableContent)
            }
        }

        @Test func droplethWithALinkOutOfTheRootIsRefused() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let created = try await p.post("/v3/droplets", t.token, #"{"relationships":{"app":{"data":{"guid":"\#(app)"}}}}"#)
                let (body, type) = multipart(bits: try makeDroplet(links: [("app/evil", "/")]))
                let r = try await p.client.execute(uri: "/v3/droplets/\(created.guid)/upload", method: .post,
                                                   headers: [.authorization: "bearer \(t.token)", .contentType: type], body: body)
                #expect(r.status == .unprocessableContent)
                #expect(String(buffer: r.body).contains("app/evil"))
                #expect(try await p.get("/v3/droplets/\(created.guid)", t.token).json["state"] as? String == "FAILED")
                #expect(p.blobFiles().isEmpty)
            }
        }

        @Test func onlyTheLastFiveDropletsAreKept() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let first = try await p.stagedDroplet(app: app, token: t.token)
                var guids: [String] = []
                for i in 0..<6 {
                    guids.append(try await p.stagedDroplet(
                        app: app, token: t.token, bits: try makeDroplet(files: [("app/v", "\(i)")]), assign: false))
                }
                let kept = Set(try await p.get("/v3/apps/\(app)/droplets?per_page=50", t.token).resources.compactMap { $0["guid"] as? String })
                #expect(kept.count == 5)
                #expect(kept.contains(first), "the current droplet is always kept")
                #expect(kept.isSuperset(of: guids.suffix(4)))
                #expect(!kept.contains(guids[0]) && !kept.contains(guids[1]))
                // Blobs of pruned droplets are collected.
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                let removed = try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0)
                #expect(removed.count == 2)
            }
        }
    }
}
