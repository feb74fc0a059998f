import Foundation
import HTTPTypes
import Testing

@testable import CloudController

extension ControllerIntegration {
    @Suite struct Buildpacks {
        func create(_ p: Platform, _ name: String, url: String, position: Int? = nil) async throws -> Reply {
            let pos = position.map { #","position":\#($0)"# } ?? ""
            return try await p.post("/v3/buildpacks", p.adminToken, #"{"name":"\#(name)","url":"\#(url)"\#(pos)}"#)
        }

        func order(_ p: Platform) async throws -> [String] {
            try await p.get("/v3/buildpacks", p.adminToken).names
        }

        @Test func positionsShiftLikeCF() async throws {
            try await Platform.run { p in
                #expect(try await create(p, "staticfile", url: "https://git.example/staticfile.git").status == .created)
                #expect(try await create(p, "python", url: "https://git.example/python.git#v1.2").status == .created)
                #expect(try await create(p, "binary", url: "file:///srv/buildpacks/binary").status == .created)
                #expect(try await order(p) == ["staticfile", "python", "binary"])
                let first = try await create(p, "nodejs", url: "https://git.example/node.git", position: 1)
                #expect(first.json["position"] as? Int == 1)
                #expect(try await order(p) == ["nodejs", "staticfile", "python", "binary"])
                let moved = try await p.patch("/v3/buildpacks/\(first.guid)", p.adminToken, #"{"position":99,"enabled":false}"#)
                #expect(moved.json["position"] as? Int == 4)
                #expect(moved.json["enabled"] as? Bool == false)
                #expect(try await order(p) == ["staticfile", "python", "binary", "nodejs"])
                let python = try await p.get("/v3/buildpacks?names=python", p.adminToken).resources.first?["guid"] as? String ?? ""
                #expect(try await p.delete("/v3/buildpacks/\(python)", p.adminToken).status == .accepted)
                let positions = try await p.get("/v3/buildpacks", p.adminToken).resources.compactMap { $0["position"] as? Int }
                #expect(positions == [1, 2, 3])
            }
        }

        @Test func credentialsAreSealedAndNeverShown() async throws {
            try await Platform.run { p in
                let r = try await create(p, "private", url: "https://deploy:s3cret-token@git.example/private.git#main")
                #expect(r.status == .created)
                #expect(!r.body.contains("s3cret-token"))
                #expect(r.json["url"] as? String == "https://***@git.example/private.git#main")
                #expect(!(try await p.get("/v3/buildpacks", p.adminToken).body.contains("s3cret-token")))
                #expect(!(try await p.get("/v3/audit_events?types=audit.buildpack.create", p.adminToken).body.contains("s3cret-token")))
                let stored = try await p.pool.query("SELECT url_display, url_sealed FROM buildpacks")
                let display = try stored.rows[0].decode("url_display", as: String.self)
                let sealed = try stored.rows[0].decode("url_sealed", as: String.self)
                #expect(!display.contains("s3cret") && !sealed.contains("s3cret"))
                // Only the controller's key opens it.
                let box = SecretBox(secret: p.config.tokenSigningKey, purpose: "buildpack url")
                #expect(try box.open(sealed) == "https://deploy:s3cret-token@git.example/private.git#main")
                #expect(throws: (any Error).self) { try SecretBox(secret: "another-key-0123456789012345678901234", purpose: "buildpack url").open(sealed) }
            }
        }

        @Test func onlyAdminsChangeBuildpacksAndURLsAreChecked() async throws {
            try await Platform.run { p in
                let t = try await p.tenant("dev")
                let created = try await create(p, "staticfile", url: "https://git.example/staticfile.git")
                #expect(try await p.get("/v3/buildpacks", t.token).names == ["staticfile"])
                #expect(try await p.post("/v3/buildpacks", t.token, #"{"name":"evil","url":"https://x.example/e.git"}"#).status == .forbidden)
                #expect(try await p.patch("/v3/buildpacks/\(created.guid)", t.token, #"{"enabled":false}"#).status == .forbidden)
                #expect(try await p.delete("/v3/buildpacks/\(created.guid)", t.token).status == .forbidden)
                for bad in ["http://git.example/plain.git", "ssh://git@git.example/x.git", "ftp://x/y", "not a url", ""] {
                    let r = try await create(p, "bad", url: bad)
                    #expect(r.status == .unprocessableContent, "\(bad): \(r.body)")
                }
                #expect(try await create(p, "staticfile", url: "https://git.example/other.git").status == .unprocessableContent)
                #expect(try await create(p, "zero", url: "https://git.example/z.git", position: 0).status == .unprocessableContent)
                // A locked buildpack keeps its URL.
                #expect(try await p.patch("/v3/buildpacks/\(created.guid)", p.adminToken, #"{"locked":true}"#).status == .ok)
                #expect(try await p.patch("/v3/buildpacks/\(created.guid)", p.adminToken, #"{"url":"https://git.example/new.git"}"#).status
                        == .unprocessableContent)
                #expect(try await p.get("/v3/buildpacks?order_by=position", p.adminToken).status == .ok)
            }
        }
    }
}
