import Foundation
import Hummingbird
import NIOCore
import PlatformModels

/// `GET /`, `GET /v3`, `GET /v3/info`, `GET /healthz`, `GET /metrics`: no authentication.
struct RootController {
    let services: Services

    func register(_ router: Router<ControllerContext>) {
        router.get("/", use: root)
        router.get("/v3", use: v3)
        router.get("/v3/info", use: info)
        router.get("/healthz", use: healthz)
        router.get("/metrics", use: metrics)
    }

    struct RootLinks: Encodable {
        struct V3Link: Encodable {
            let href: String
            let meta: [String: String]
        }
        let links: [String: Link]
        let v3: V3Link
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: DynamicKey.self)
            var nested = c.nestedContainer(keyedBy: DynamicKey.self, forKey: DynamicKey("links"))
            for (k, v) in links { try nested.encode(v, forKey: DynamicKey(k)) }
            try nested.encode(v3, forKey: DynamicKey("cloud_controller_v3"))
        }
    }

    @Sendable func root(_ request: Request, context: ControllerContext) async throws -> Response {
        let base = services.config.externalURL
        let body = RootLinks(
            links: ["self": Link(href: base), "login": Link(href: base), "uaa": Link(href: base),
                    "logging": Link(href: base + "/v3/apps"), "app_ssh": Link(href: base)],
            v3: .init(href: base + "/v3", meta: ["version": "3.180.0"]))
        return try JSONResponse.make(body)
    }

    @Sendable func v3(_ request: Request, context: ControllerContext) async throws -> Response {
        let names = ["apps", "audit_events", "domains", "info", "jobs", "organizations", "processes", "resource_matches", "roles",
                     "routes", "spaces", "stacks", "users"]
        var links: [String: Link] = ["self": services.link("/v3")]
        for name in names { links[name] = services.link("/v3/\(name)") }
        return try JSONResponse.make(["links": links])
    }

    struct Info: Encodable {
        let name: String
        let version: String
        let description: String
        let build: String
        let custom: [String: String]
        let links: [String: Link]
    }

    @Sendable func info(_ request: Request, context: ControllerContext) async throws -> Response {
        try JSONResponse.make(Info(
            name: "cf-like", version: PlatformVersion.current,
            description: "A Cloud Foundry-style platform: push source, get a running app",
            build: PlatformVersion.current, custom: ["default_domain": services.config.defaultDomain],
            links: ["self": services.link("/v3/info")]))
    }

    @Sendable func healthz(_ request: Request, context: ControllerContext) async throws -> Response {
        do {
            _ = try await services.db.read { conn in try conn.query("SELECT 1") }
            return try JSONResponse.make(["status": "ok", "database": "ok"])
        } catch {
            return try JSONResponse.make(["status": "unavailable", "database": "unreachable"], status: .serviceUnavailable)
        }
    }

    @Sendable func metrics(_ request: Request, context: ControllerContext) async throws -> Response {
        var buffer: [UInt8] = []
        services.metrics.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                        body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }
}

/// A coding key from a runtime string.
struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
