import Crypto
import Foundation
import HTTPTypes
import NIOCore
import Testing

@testable import CloudController

/// Random printable bytes (letters), so the content is its own length in bytes and unique.
func randomText(_ count: Int) -> String {
    var random = SystemRandomNumberGenerator()
    return String((0..<count).map { _ in Character(UnicodeScalar(UInt8.random(in: 65...90, using: &random))) })
}

func sha1Hex(_ text: String) -> String {
    Insecure.SHA1.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}

/// A `resources` list in CF's v3 shape.
func resourcesJSON(_ items: [(path: String, content: String, mode: String)]) -> String {
    "[" + items.map { #"{"checksum":{"value":"\#(sha1Hex($0.content))"},"size_in_bytes":\#($0.content.utf8.count),"path":"\#($0.path)","mode":"\#($0.mode)"}"# }
        .joined(separator: ",") + "]"
}

/// One entry of a stored package, as Python's tarfile/zipfile read it.
struct PackageEntry: Decodable, Equatable {
    let type: String
    let mode: Int
    let sha1: String?
    let link: String?
}

extension Platform {
    /// Uploads a multipart body made of exactly `parts` (name, content).
    func uploadParts(_ package: String, _ token: String, _ parts: [(String, Data)]) async throws -> Reply {
        let boundary = "cflike-parts-7"
        var body = Data()
        for (name, content) in parts {
            let filename = name == "bits" ? "; filename=\"package.zip\"" : ""
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\(filename)\r\n\r\n".utf8))
            body.append(content)
            body.append(Data("\r\n".utf8))
        }
        body.append(Data("--\(boundary)--\r\n".utf8))
        let r = try await client.execute(uri: "/v3/packages/\(package)/upload", method: .post,
                                         headers: [.authorization: "bearer \(token)", .contentType: "multipart/form-data; boundary=\(boundary)"],
                                         body: ByteBuffer(bytes: body))
        return Reply(status: r.status, headers: r.headers, body: String(buffer: r.body))
    }

    func matches(_ token: String, _ resources: String) async throws -> Reply {
        try await post("/v3/resource_matches", token, #"{"resources":\#(resources)}"#)
    }

    /// The stored blob of a package, read (and verified) through the blobstore, listed entry by entry.
    func storedEntries(package: String, token: String) async throws -> [String: PackageEntry] {
        let json = try await get("/v3/packages/\(package)", token).json
        guard let digest = ((json["data"] as? [String: Any])?["checksum"] as? [String: Any])?["value"] as? String else {
            throw TestFailure("package \(package) has no checksum: \(json)")
        }
        var bytes = Data()
        try Blobstore(root: config.blobstoreDirectory).read(digest) { bytes.append(contentsOf: $0) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pkg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let blob = dir.appendingPathComponent("blob")
        try bytes.write(to: blob)
        let out = dir.appendingPathComponent("entries.json")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
            import hashlib, json, sys, tarfile, zipfile
            entries = {}
            if zipfile.is_zipfile(sys.argv[1]):
                with zipfile.ZipFile(sys.argv[1]) as z:
                    for i in z.infolist():
                        kind = "dir" if i.is_dir() else "file"
                        entries[i.filename.rstrip("/")] = {"type": kind, "mode": (i.external_attr >> 16) & 0o7777,
                            "sha1": None if kind == "dir" else hashlib.sha1(z.read(i)).hexdigest(), "link": None}
            else:
                with tarfile.open(sys.argv[1]) as t:
                    for m in t.getmembers():
                        kind = "file" if m.isfile() else "dir" if m.isdir() else "link" if m.issym() else "other"
                        entries[m.name.rstrip("/")] = {"type": kind, "mode": m.mode,
                            "sha1": hashlib.sha1(t.extractfile(m).read()).hexdigest() if m.isfile() else None,
                            "link": m.linkname if m.issym() else None}
            json.dump(entries, open(sys.argv[2], "w"))
            """, blob.path, out.path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("python3 could not read the stored package") }
        return try JSONDecoder().decode([String: PackageEntry].self, from: Data(contentsOf: out))
    }

    /// Everything left in the blobstore's temp area (files and scratch directories).
    func tempLeftovers() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: config.blobstoreDirectory + "/tmp")) ?? []
    }

    func packageState(_ package: String, _ token: String) async throws -> (state: String?, error: String?) {
        let json = try await get("/v3/packages/\(package)", token).json
        return (json["state"] as? String, (json["data"] as? [String: Any])?["error"] as? String)
    }
}

extension ControllerIntegration {
    @Suite struct ResourceMatching {
        /// Uploads a package holding `big` (pooled) and a small file; returns (app, package).
        static func seedPool(_ p: Platform, _ t: Platform.Tenant, big: String, small: String = "tiny") async throws -> (String, String) {
            let app = try await p.app("seed", space: t.space, token: t.token)
            let package = try await p.package(app: app, token: t.token)
            let r = try await p.upload(package, t.token, bits: try makeZip([("assets/big.bin", big), ("small.txt", small)]))
            guard r.status == .ok else { throw TestFailure("seed upload: \(r.status) \(r.body)") }
            return (app, package)
        }

        @Test func emptyPoolMatchesNothing() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let big = randomText(100_000)
                let r = try await p.matches(t.token, resourcesJSON([("big.bin", big, "644")]))
                #expect(r.status == .created, "\(r.body)")
                #expect(r.body == #"{"resources":[]}"#)
                #expect(try await p.matches(t.token, "[]").body == #"{"resources":[]}"#)
                #expect(try await p.call(.post, "/v3/resource_matches", token: nil, json: #"{"resources":[]}"#).status == .unauthorized)
            }
        }

        @Test func uploadedLargeFilesArePooledSmallOnesNever() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let other = try await p.tenant("bob")
                let big = randomText(100_000)
                let small = randomText(1000)
                _ = try await Self.seedPool(p, t, big: big, small: small)
                let ask = resourcesJSON([("small.txt", small, "644"), ("lib/big.bin", big, "755"), ("missing.bin", randomText(100_000), "644")])
                // Any authenticated user asks; the answer echoes path and mode, in CF's shape.
                for token in [t.token, other.token] {
                    let r = try await p.matches(token, ask)
                    #expect(r.status == .created, "\(r.body)")
                    #expect(r.resources.count == 1, "\(r.body)")
                    let hit = r.resources.first
                    #expect(hit?["path"] as? String == "lib/big.bin")
                    #expect(hit?["mode"] as? String == "755")
                    #expect(hit?["size_in_bytes"] as? Int == 100_000)
                    #expect((hit?["checksum"] as? [String: Any])?["value"] as? String == sha1Hex(big))
                }
                // The same content under another size is another file.
                let wrongSize = #"[{"checksum":{"value":"\#(sha1Hex(big))"},"size_in_bytes":100001,"path":"x","mode":"644"}]"#
                #expect(try await p.matches(t.token, wrongSize).resources.isEmpty)
                // The pool holds exactly the large file, under its SHA-256 in the blobstore.
                let rows = try await p.pool.query("SELECT sha1, size_bytes, blob_sha256 FROM resource_pool").rows
                #expect(rows.count == 1)
                let blob = try rows.first?.decode("blob_sha256", as: String.self)
                #expect(blob == SHA256.hash(data: Data(big.utf8)).map { String(format: "%02x", $0) }.joined())
                #expect(Blobstore(root: p.config.blobstoreDirectory).exists(blob ?? ""))
                #expect(p.tempLeftovers().isEmpty, "\(p.tempLeftovers())")
            }
        }

        @Test func smallFilesNeverMatchEvenIfPooledUnderOtherBounds() async throws {
            // A pool filled while the minimum was lower answers nothing below today's minimum.
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_RESOURCE_POOL_MIN_BYTES": "100"]) { p in
                let t = try await p.tenant("alice")
                let small = randomText(1000)
                _ = try await Self.seedPool(p, t, big: randomText(70_000), small: small)
                #expect(try await p.matches(t.token, resourcesJSON([("small.txt", small, "644")])).resources.count == 1)
            }
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_RESOURCE_POOL_MIN_BYTES": "65536"]) { p in
                let t = try await p.tenant("alice")
                let small = randomText(1000)
                _ = try await Self.seedPool(p, t, big: randomText(70_000), small: small)
                _ = try await p.pool.query("INSERT INTO resource_pool(sha1, size_bytes, blob_sha256) VALUES ($1, 1000, $2)",
                                       [sha1Hex(small), String(repeating: "a", count: 64)])
                #expect(try await p.matches(t.token, resourcesJSON([("small.txt", small, "644")])).resources.isEmpty)
            }
        }

        @Test func uploadWithResourcesBuildsThePackageFromBitsAndPool() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let big = randomText(100_000)
                _ = try await Self.seedPool(p, t, big: big)
                let app = try await p.app("web", space: t.space, token: t.token)

                // v3 shape: a small file in bits, the large one named in resources (executable).
                let package = try await p.package(app: app, token: t.token)
                let index = "<h1>hi</h1>"
                let r = try await p.upload(package, t.token, bits: try makeZip([("index.html", index)]),
                                           resources: resourcesJSON([("lib/big.bin", big, "755")]))
                #expect(r.status == .ok, "\(r.body)")
                #expect(r.json["state"] as? String == "READY")
                let entries = try await p.storedEntries(package: package, token: t.token)
                #expect(entries["index.html"] == PackageEntry(type: "file", mode: 0o644, sha1: sha1Hex(index), link: nil), "\(entries)")
                #expect(entries["lib/big.bin"] == PackageEntry(type: "file", mode: 0o755, sha1: sha1Hex(big), link: nil), "\(entries)")
                #expect(entries["lib"]?.type == "dir" && entries["lib"]?.mode == 0o755)
                #expect(entries.count == 3, "\(entries.keys.sorted())")

                // v2 shape and no bits at all (every file pooled, as the cf CLI then sends it).
                let second = try await p.package(app: app, token: t.token)
                let v2 = #"[{"fn":"./data/copy.bin","sha1":"\#(sha1Hex(big))","size":100000,"mode":"644"}]"#
                let onlyResources = try await p.uploadParts(second, t.token, [("resources", Data(v2.utf8))])
                #expect(onlyResources.status == .ok, "\(onlyResources.body)")
                let secondEntries = try await p.storedEntries(package: second, token: t.token)
                #expect(secondEntries["data/copy.bin"] == PackageEntry(type: "file", mode: 0o644, sha1: sha1Hex(big), link: nil))
                #expect(secondEntries.count == 2, "\(secondEntries.keys.sorted())")

                // An empty bits part with resources is the same.
                let third = try await p.package(app: app, token: t.token)
                let emptyBits = try await p.uploadParts(third, t.token, [("resources", Data(resourcesJSON([("big.bin", big, "100644")]).utf8)), ("bits", Data())])
                #expect(emptyBits.status == .ok, "\(emptyBits.body)")
                #expect(try await p.storedEntries(package: third, token: t.token)["big.bin"]?.mode == 0o644)
                #expect(p.tempLeftovers().isEmpty, "\(p.tempLeftovers())")
            }
        }

        @Test func resourceNotInThePoolFailsThePackageAndStoresNothing() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let big = randomText(100_000)
                _ = try await Self.seedPool(p, t, big: big)
                let blobsBefore = p.blobFiles().sorted()
                let app = try await p.app("web", space: t.space, token: t.token)
                let package = try await p.package(app: app, token: t.token)
                let unknown = randomText(100_000)
                let r = try await p.upload(package, t.token, bits: try makeZip([("index.html", "hi")]),
                                           resources: resourcesJSON([("lib/big.bin", big, "644"), ("lib/unknown.bin", unknown, "644")]))
                #expect(r.status == .unprocessableContent, "\(r.body)")
                #expect(r.errorDetail.contains("lib/unknown.bin"), "\(r.errorDetail)")
                let state = try await p.packageState(package, t.token)
                #expect(state.state == "FAILED")
                #expect(state.error?.contains("lib/unknown.bin") == true, "\(state.error ?? "")")
                #expect(p.blobFiles().sorted() == blobsBefore, "nothing stored")
                #expect(p.tempLeftovers().isEmpty, "\(p.tempLeftovers())")

                // A pool entry whose blob is gone is reported the same way, and dropped.
                let digest = SHA256.hash(data: Data(big.utf8)).map { String(format: "%02x", $0) }.joined()
                try FileManager.default.removeItem(atPath: Blobstore(root: p.config.blobstoreDirectory).path(digest))
                let again = try await p.upload(package, t.token, bits: try makeZip([("index.html", "hi")]),
                                               resources: resourcesJSON([("lib/big.bin", big, "644")]))
                #expect(again.status == .unprocessableContent, "\(again.body)")
                #expect(again.errorDetail.contains("lib/big.bin"), "\(again.errorDetail)")
                #expect(try await p.pool.query("SELECT count(*) AS n FROM resource_pool").rows[0].decode("n", as: Int.self) == 0)
                #expect(p.tempLeftovers().isEmpty, "\(p.tempLeftovers())")
                // Uploading the file itself puts it back in the pool.
                let fixed = try await p.upload(package, t.token, bits: try makeZip([("index.html", "hi"), ("lib/big.bin", big)]))
                #expect(fixed.status == .ok, "\(fixed.body)")
                #expect(try await p.matches(t.token, resourcesJSON([("x", big, "644")])).resources.count == 1)
            }
        }

        @Test func hostileResourcePathsAreRefusedAndNothingEscapes() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let big = randomText(100_000)
                _ = try await Self.seedPool(p, t, big: big)
                let app = try await p.app("web", space: t.space, token: t.token)
                let passwd = try Data(contentsOf: URL(fileURLWithPath: "/etc/passwd"))
                let blobstoreParent = (p.config.blobstoreDirectory as NSString).deletingLastPathComponent
                let before = Set((try? FileManager.default.contentsOfDirectory(atPath: blobstoreParent)) ?? [])
                // An archive with a symlink inside its root (allowed) and a file.
                let linked = try makeDroplet(files: [("sub/keep.txt", "keep"), ("index.html", "hi")], links: [("link", "sub")])
                let cases: [(String, Data, String)] = [
                    ("../x", try makeZip([("index.html", "hi")]), "'..'"),
                    ("/etc/passwd", try makeZip([("index.html", "hi")]), "absolute"),
                    ("a/../../x", try makeZip([("index.html", "hi")]), "'..'"),
                    ("a\\u0000b", try makeZip([("index.html", "hi")]), "control character"),
                    ("link/x", linked, "symlink"),
                    ("link", linked, "also in the uploaded archive"),
                    ("index.html", linked, "also in the uploaded archive"),
                    ("index.html/x", linked, "which is a file"),
                ]
                for (path, bits, reason) in cases {
                    let package = try await p.package(app: app, token: t.token)
                    let r = try await p.upload(package, t.token, bits: bits, resources: resourcesJSON([(path, big, "644")]))
                    #expect(r.status == .unprocessableContent, "\(path): \(r.status) \(r.body)")
                    #expect(r.errorDetail.contains(reason), "\(path): \(r.errorDetail)")
                    #expect(try await p.packageState(package, t.token).state == "FAILED", "\(path)")
                }
                #expect(try Data(contentsOf: URL(fileURLWithPath: "/etc/passwd")) == passwd)
                #expect(Set((try? FileManager.default.contentsOfDirectory(atPath: blobstoreParent)) ?? []) == before)
                #expect(!FileManager.default.fileExists(atPath: p.config.blobstoreDirectory + "/x"))
                #expect(p.tempLeftovers().isEmpty, "\(p.tempLeftovers())")
            }
        }

        @Test func malformedResourcesAre422() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let sha = String(repeating: "ab", count: 20)
                let bad: [(String, String)] = [
                    ("{", "not valid JSON"),
                    (#"{"a":1}"#, "must be an array"),
                    ("[1]", "resources[0] must be an object"),
                    (#"[{"checksum":{"value":"\#(sha.uppercased())"},"size_in_bytes":70000,"path":"a"}]"#, "resources[0].checksum.value"),
                    (#"[{"checksum":{"value":"abc"},"size_in_bytes":70000,"path":"a"}]"#, "resources[0].checksum.value"),
                    (#"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":-1,"path":"a"}]"#, "resources[0].size_in_bytes"),
                    (#"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":"70000","path":"a"}]"#, "resources[0].size_in_bytes"),
                    (#"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":1.5,"path":"a"}]"#, "resources[0].size_in_bytes"),
                    (#"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":70000}]"#, "resources[0].path is required"),
                    (#"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":70000,"path":"a","mode":"rwx"}]"#, "resources[0].mode"),
                    (#"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":70000,"path":"a","owner":"root"}]"#, "'owner'"),
                    (#"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":70000,"path":"a"},{"checksum":{"value":"\#(sha)"},"size_in_bytes":70000,"path":"./a"}]"#, "more than once"),
                    (#"[{"fn":"a","sha1":"\#(sha)","size":-5}]"#, "resources[0].size"),
                ]
                for (resources, message) in bad {
                    let package = try await p.package(app: app, token: t.token)
                    let r = try await p.upload(package, t.token, bits: try makeZip([("index.html", "hi")]), resources: resources)
                    #expect(r.status == .unprocessableContent, "\(resources): \(r.status) \(r.body)")
                    #expect(r.errorDetail.contains(message), "\(resources): \(r.errorDetail)")
                    #expect(try await p.packageState(package, t.token).state == "FAILED")
                }
                #expect(p.blobFiles().isEmpty, "\(p.blobFiles())")
                #expect(p.tempLeftovers().isEmpty, "\(p.tempLeftovers())")

                // resource_matches: the same rules, at most 5000 entries, and JSON errors are 400.
                let one = #"{"checksum":{"value":"\#(sha)"},"size_in_bytes":70000,"path":"a","mode":"644"}"#
                let tooMany = try await p.matches(t.token, "[" + Array(repeating: one, count: 5001).joined(separator: ",") + "]")
                #expect(tooMany.status == .unprocessableContent)
                #expect(tooMany.errorDetail.contains("at most 5000"), "\(tooMany.errorDetail)")
                #expect(try await p.matches(t.token, "[" + Array(repeating: one, count: 5000).joined(separator: ",") + "]").status == .created)
                let upper = try await p.matches(t.token, #"[{"checksum":{"value":"\#(sha.uppercased())"},"size_in_bytes":70000}]"#)
                #expect(upper.status == .unprocessableContent)
                #expect(upper.errorDetail.contains("40 lower-case hexadecimal"), "\(upper.errorDetail)")
                #expect(try await p.matches(t.token, #"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":-1}]"#).status == .unprocessableContent)
                #expect(try await p.matches(t.token, #"[{"checksum":{"value":"\#(sha)"}}]"#).status == .unprocessableContent)
                #expect(try await p.matches(t.token, #"[{"checksum":{"value":"\#(sha)"},"size_in_bytes":70000,"path":"../x"}]"#).status
                        == .unprocessableContent)
                // v2 shape is for uploads only.
                #expect(try await p.matches(t.token, #"[{"fn":"a","sha1":"\#(sha)","size":70000}]"#).status == .unprocessableContent)
                #expect(try await p.post("/v3/resource_matches", t.token, #"{"resources":[],"extra":1}"#).status == .unprocessableContent)
                #expect(try await p.post("/v3/resource_matches", t.token, "{").status == .badRequest)
            }
        }

        @Test func mergedPackageCountsAgainstThePackageCaps() async throws {
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_MAX_PACKAGE_UNCOMPRESSED_BYTES": "150000"]) { p in
                let t = try await p.tenant("alice")
                let big = randomText(100_000)
                _ = try await Self.seedPool(p, t, big: big)
                let app = try await p.app("web", space: t.space, token: t.token)
                let package = try await p.package(app: app, token: t.token)
                let r = try await p.upload(package, t.token, bits: try makeZip([("more.bin", randomText(60_000))]),
                                           resources: resourcesJSON([("big.bin", big, "644")]))
                #expect(r.status == .unprocessableContent, "\(r.body)")
                #expect(r.errorDetail.contains("over the limit of 150000"), "\(r.errorDetail)")
                #expect(try await p.packageState(package, t.token).state == "FAILED")
                #expect(p.tempLeftovers().isEmpty, "\(p.tempLeftovers())")
            }
        }

        @Test func janitorKeepsPooledBlobsAndBoundsThePool() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let big = randomText(100_000)
                let (app, package) = try await Self.seedPool(p, t, big: big)
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                let pooled = SHA256.hash(data: Data(big.utf8)).map { String(format: "%02x", $0) }.joined()
                let packageJSON = try await p.get("/v3/packages/\(package)", t.token).json
                let packageBlob = try #require(((packageJSON["data"] as? [String: Any])?["checksum"] as? [String: Any])?["value"] as? String)
                // The app goes: its package blob is collected, the pooled file stays.
                #expect(try await p.delete("/v3/apps/\(app)", t.token).status == .accepted)
                let removed = try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0)
                #expect(removed == [packageBlob])
                #expect(blobstore.exists(pooled))
                #expect(try await p.matches(t.token, resourcesJSON([("x", big, "644")])).resources.count == 1)

                // Within bounds nothing is pruned; an entry idle past the limit goes, then its blob.
                let pool = ResourcePool(config: p.config)
                #expect(try await BlobstoreJanitor.prune(pool: p.pool, resourcePool: pool) == 0)
                _ = try await p.pool.query("UPDATE resource_pool SET last_used_at = now() - interval '31 days'")
                #expect(try await BlobstoreJanitor.prune(pool: p.pool, resourcePool: pool) == 1)
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0) == [pooled])
                #expect(try await p.matches(t.token, resourcesJSON([("x", big, "644")])).resources.isEmpty)

                // Past the total size cap the least recently used entries go first.
                let again = try await p.app("again", space: t.space, token: t.token)
                let first = randomText(70_000), second = randomText(80_000)
                let pk = try await p.package(app: again, token: t.token)
                #expect(try await p.upload(pk, t.token, bits: try makeZip([("a.bin", first), ("b.bin", second)])).status == .ok)
                _ = try await p.pool.query("UPDATE resource_pool SET last_used_at = now() - interval '2 days' WHERE size_bytes = 70000")
                var capped = p.config
                capped.resourcePoolMaxTotalBytes = 100_000
                #expect(try await BlobstoreJanitor.prune(pool: p.pool, resourcePool: ResourcePool(config: capped)) == 1)
                let left = try await p.pool.query("SELECT size_bytes FROM resource_pool").rows.map { try $0.decode("size_bytes", as: Int.self) }
                #expect(left == [80_000])
            }
        }
    }
}
