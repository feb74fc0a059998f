import Crypto
import Foundation
import HTTPTypes
import NIOCore
import Testing

@testable import CloudController

/// Builds archives with Python's zipfile, which can write any entry name (hostile ones included).
func makeZip(_ entries: [(String, String)]) throws -> Data {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zip-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let spec = dir.appendingPathComponent("spec.json")
    try JSONSerialization.data(withJSONObject: entries.map { [$0.0, $0.1] }).write(to: spec)
    let out = dir.appendingPathComponent("out.zip")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", """
        import json, sys, zipfile
        entries = json.load(open(sys.argv[1]))
        with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
            for name, content in entries:
                z.writestr(name, content)
        """, spec.path, out.path]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw TestFailure("python3 could not build the zip") }
    return try Data(contentsOf: out)
}

func multipart(bits: Data, resources: String = "[]", boundary: String = "cflike-boundary-42") -> (ByteBuffer, String) {
    var body = Data()
    body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"resources\"\r\n\r\n\(resources)\r\n".utf8))
    body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"bits\"; filename=\"app.zip\"\r\nContent-Type: application/zip\r\n\r\n".utf8))
    body.append(bits)
    body.append(Data("\r\n--\(boundary)--\r\n".utf8))
    return (ByteBuffer(bytes: body), "multipart/form-data; boundary=\(boundary)")
}

extension Platform {
    func upload(_ package: String, _ token: String, bits: Data, resources: String = "[]") async throws -> Reply {
        let (body, type) = multipart(bits: bits, resources: resources)
        let r = try await client.execute(uri: "/v3/packages/\(package)/upload", method: .post,
                                         headers: [.authorization: "bearer \(token)", .contentType: type], body: body)
        return Reply(status: r.status, headers: r.headers, body: String(buffer: r.body))
    }

    func package(app: String, token: String) async throws -> String {
        let r = try await post("/v3/packages", token, #"{"type":"bits","relationships":{"app":{"data":{"guid":"\#(app)"}}}}"#)
        guard r.status == .created else { throw TestFailure("create package: \(r.status) \(r.body)") }
        return r.guid
    }

    func blobFiles() -> [String] {
        let root = config.blobstoreDirectory
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        return e.compactMap { $0 as? String }.filter { !$0.hasSuffix("/") && ($0.hasPrefix("sha256/") || $0.hasPrefix("tmp/")) && $0.split(separator: "/").count >= 2 }
            .filter { var d: ObjCBool = false; return FileManager.default.fileExists(atPath: root + "/" + $0, isDirectory: &d) && !d.boolValue }
    }
}

extension ControllerIntegration {
    @Suite struct Packages {
        @Test func uploadStoresAValidatedContentAddressedBlob() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let package = try await p.package(app: app, token: t.token)
                let created = try await p.get("/v3/packages/\(package)", t.token)
                #expect(created.json["state"] as? String == "AWAITING_UPLOAD")
                #expect(created.body.contains(#""value":null"#))
                let zip = try makeZip([("index.html", "<h1>hi</h1>"), ("public/app.js", "console.log(1)")])
                let uploaded = try await p.upload(package, t.token, bits: zip)
                #expect(uploaded.status == .ok, "\(uploaded.body)")
                #expect(uploaded.json["state"] as? String == "READY")
                let digest = SHA256.hash(data: zip).map { String(format: "%02x", $0) }.joined()
                let checksum = (uploaded.json["data"] as? [String: Any])?["checksum"] as? [String: Any]
                #expect(checksum?["type"] as? String == "sha256")
                #expect(checksum?["value"] as? String == digest)
                // Stored under its digest, verified on read.
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                #expect(blobstore.exists(digest))
                try blobstore.verify(digest)
                #expect(p.blobFiles().filter { $0.hasPrefix("tmp/") }.isEmpty)
                // A second upload into a READY package is refused.
                #expect(try await p.upload(package, t.token, bits: zip).status == .unprocessableContent)
                // Listed for the app.
                #expect(try await p.get("/v3/apps/\(app)/packages", t.token).resources.count == 1)
                // A corrupted blob is detected on read.
                try Data("tampered".utf8).write(to: URL(fileURLWithPath: blobstore.path(digest)))
                #expect(throws: Blobstore.Failure.self) { try blobstore.verify(digest) }
            }
        }

        @Test func zipSlipIsRefusedNamingTheEntryAndNothingIsStored() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                for (name, hostile) in [("dotdot", "../../etc/cron.d/pwned"), ("absolute", "/etc/pwned"), ("nested", "a/../../pwned")] {
                    let package = try await p.package(app: app, token: t.token)
                    let zip = try makeZip([("ok.txt", "fine"), (hostile, "evil")])
                    let r = try await p.upload(package, t.token, bits: zip)
                    #expect(r.status == .unprocessableContent, "\(name): \(r.status) \(r.body)")
                    #expect(r.errorTitle == "CF-AppBitsUploadInvalid", "\(name)")
                    #expect(r.errorDetail.contains("pwned"), "\(name): the error names the entry: \(r.errorDetail)")
                    let state = try await p.get("/v3/packages/\(package)", t.token).json
                    #expect(state["state"] as? String == "FAILED", "\(name)")
                }
                #expect(p.blobFiles().isEmpty, "nothing stored: \(p.blobFiles())")
                #expect(!FileManager.default.fileExists(atPath: "/etc/pwned"))
                #expect(!FileManager.default.fileExists(atPath: "/etc/cron.d/pwned"))
            }
        }

        @Test func oversizedUploadIs413AndLeavesNothing() async throws {
            try await Platform.run(configure: ["CFLIKE_CONTROLLER_MAX_PACKAGE_BYTES": "4096"]) { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let package = try await p.package(app: app, token: t.token)
                var random = SystemRandomNumberGenerator()
                let big = try makeZip([("blob.bin", String((0..<20000).map { _ in Character(UnicodeScalar(UInt8.random(in: 65...90, using: &random))) }))])
                let r = try await p.upload(package, t.token, bits: big)
                #expect(r.status == .contentTooLarge)
                #expect(try await p.get("/v3/packages/\(package)", t.token).json["state"] as? String == "FAILED")
                #expect(p.blobFiles().isEmpty)
            }
        }

        @Test func badUploadsAre4xx() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let b = try await p.tenant("bob")
                let app = try await p.app("web", space: t.space, token: t.token)
                let package = try await p.package(app: app, token: t.token)
                let zip = try makeZip([("a.txt", "a")])
                // Another tenant cannot see or fill the package.
                #expect(try await p.get("/v3/packages/\(package)", b.token).status == .notFound)
                #expect(try await p.upload(package, b.token, bits: zip).status == .notFound)
                #expect(try await p.post("/v3/packages", b.token, #"{"type":"bits","relationships":{"app":{"data":{"guid":"\#(app)"}}}}"#).status
                        == .unprocessableContent)
                // Not multipart.
                let plain = try await p.post("/v3/packages/\(package)/upload", t.token, "{}")
                #expect(plain.status == .unprocessableContent)
                // Not an archive at all.
                let junk = try await p.upload(package, t.token, bits: Data("this is not a zip".utf8))
                #expect(junk.status == .unprocessableContent)
                #expect(junk.errorTitle == "CF-AppBitsUploadInvalid")
                // A failed package can take a new upload.
                #expect(try await p.upload(package, t.token, bits: zip).status == .ok)
                #expect(p.blobFiles().count == 1)
            }
        }
    }
}

extension ControllerIntegration {
    @Suite struct BlobstoreGC {
        @Test func unreferencedBlobsAreCollectedReferencedOnesKept() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                let package = try await p.package(app: app, token: t.token)
                let zip = try makeZip([("a.txt", "kept")])
                #expect(try await p.upload(package, t.token, bits: zip).status == .ok)
                let blobstore = Blobstore(root: p.config.blobstoreDirectory)
                let orphan = try blobstore.writer(limit: 1 << 20)
                try orphan.write(Array("orphan".utf8))
                let orphanDigest = try blobstore.commit(try orphan.finish())
                #expect(blobstore.exists(orphanDigest))
                // Young blobs survive the grace period.
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 3600).isEmpty)
                let removed = try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0)
                #expect(removed == [orphanDigest])
                #expect(!blobstore.exists(orphanDigest))
                let kept = SHA256.hash(data: zip).map { String(format: "%02x", $0) }.joined()
                #expect(blobstore.exists(kept))
                // Deleting the app releases its package's blob.
                #expect(try await p.delete("/v3/apps/\(app)", t.token).status == .accepted)
                #expect(try await BlobstoreJanitor.collect(pool: p.pool, blobstore: blobstore, threadPool: sharedThreadPool, grace: 0) == [kept])
            }
        }
    }
}
