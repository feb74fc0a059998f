import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import PlatformModels
import PostgresStore
import Testing
import TestSupport

@testable import CloudController

/// Every controller test gets a fresh database with the real schema, a real router and an admin.
@Suite(.serialized) enum ControllerIntegration {}

let testLogger: Logger = {
    var logger = Logger(label: "CloudControllerTests")
    logger.logLevel = .warning
    return logger
}()

/// Shared thread pool for every test (its threads are cheap and it lives for the process).
let sharedThreadPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 4)
    pool.start()
    return pool
}()

/// A JSON answer.
struct Reply: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: String

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
    var guid: String { json["guid"] as? String ?? "" }
    var errorCode: Int? { ((json["errors"] as? [[String: Any]])?.first?["code"] as? Int) }
    var errorTitle: String? { ((json["errors"] as? [[String: Any]])?.first?["title"] as? String) }
    var errorDetail: String { ((json["errors"] as? [[String: Any]])?.first?["detail"] as? String) ?? "" }
    var resources: [[String: Any]] { json["resources"] as? [[String: Any]] ?? [] }
    var names: [String] { resources.compactMap { $0["name"] as? String } }
    var pagination: [String: Any] { json["pagination"] as? [String: Any] ?? [:] }
    func link(_ name: String) -> String? { (pagination[name] as? [String: Any])?["href"] as? String }
}

/// The platform under test: config, database, router and helpers to call it.
struct Platform: Sendable {
    let config: ControllerConfig
    let pool: PostgresPool
    let client: any TestClientProtocol
    let adminToken: String
    /// The controller's change feed: `subscriberCount` says how many long-polls wait on it.
    let feed: ChangeFeed
    static let adminPassword = "admin-password-1"

    static let baseURL = "http://api.test"

    /// Boots a controller on a scratch database and runs `body` against its router.
    static func run(configure: [String: String] = [:], _ body: @Sendable (Platform) async throws -> Void) async throws {
        let database = try await ScratchDatabase.create(logger: testLogger)
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("cc-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home.appendingPathComponent("var/secrets"), withIntermediateDirectories: true)
        try "test-signing-key-0123456789abcdefghijklmnopqrstuvwxyz".write(
            to: home.appendingPathComponent("var/secrets/token-signing-key"), atomically: true, encoding: .utf8)
        try "test-internal-credential-0123456789".write(
            to: home.appendingPathComponent("var/secrets/internal-credential"), atomically: true, encoding: .utf8)
        var env = [
            "CFLIKE_PLATFORM_HOME": home.path,
            "CFLIKE_CONTROLLER_DATABASE_URL": database.conninfo,
            "CFLIKE_CONTROLLER_EXTERNAL_URL": baseURL,
            "CFLIKE_CONTROLLER_PASSWORD_KDF_ROUNDS": String(PasswordHasher.minimumRounds),
        ]
        env.merge(configure) { $1 }
        let config = try ControllerConfig(document: try ConfigDocument(path: nil, environment: env))
        let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: database.conninfo, poolSize: 4),
                                threadPool: sharedThreadPool, logger: testLogger)
        defer { try? FileManager.default.removeItem(at: home) }
        do {
            try await CloudController.prepareDatabase(pool: pool, config: config, logger: testLogger)
            _ = try await CloudController.bootstrapAdmin(pool: pool, config: config, threadPool: sharedThreadPool,
                                                         username: "admin", password: adminPassword)
            let feed = ChangeFeed(pool: pool, logger: testLogger)
            let router = CloudController.buildRouter(config: config, pool: pool, threadPool: sharedThreadPool, feed: feed, logger: testLogger)
            let app = Application(router: router, logger: testLogger)
            try await app.test(.router) { client in
                let token = try await Self.token(client, "admin", adminPassword)
                try await body(Platform(config: config, pool: pool, client: client, adminToken: token, feed: feed))
            }
        } catch {
            await pool.shutdown()
            await database.drop()
            throw error
        }
        await pool.shutdown()
        await database.drop()
    }

    /// Waits until `count` long-polls (or followed streams) have subscribed to the change feed:
    /// from then on a change wakes them, however long the machine takes to park them.
    func waitForSubscribers(_ count: Int, within: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + within
        while feed.subscriberCount < count {
            guard ContinuousClock.now < deadline else {
                throw TestFailure("\(feed.subscriberCount) of \(count) long-polls subscribed after \(within)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    static func token(_ client: any TestClientProtocol, _ username: String, _ password: String) async throws -> String {
        let r = try await client.execute(
            uri: "/oauth/token", method: .post,
            headers: [.authorization: "Basic " + Data("cf:".utf8).base64EncodedString(), .contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: "grant_type=password&username=\(username)&password=\(password)"))
        guard r.status == .ok,
              let json = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any],
              let token = json["access_token"] as? String
        else { throw TestFailure("login of \(username) failed: \(r.status) \(String(buffer: r.body))") }
        return token
    }

    /// Calls the API; `body` is JSON text or a value to encode.
    func call(_ method: HTTPRequest.Method, _ path: String, token: String?, json: String? = nil,
              headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "bearer \(token)" }
        if json != nil { headers[.contentType] = "application/json" }
        let r = try await client.execute(uri: path, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
        return Reply(status: r.status, headers: r.headers, body: String(buffer: r.body))
    }

    func get(_ path: String, _ token: String) async throws -> Reply { try await call(.get, path, token: token) }
    func post(_ path: String, _ token: String, _ json: String) async throws -> Reply { try await call(.post, path, token: token, json: json) }
    func patch(_ path: String, _ token: String, _ json: String) async throws -> Reply { try await call(.patch, path, token: token, json: json) }
    func delete(_ path: String, _ token: String) async throws -> Reply { try await call(.delete, path, token: token) }

    // MARK: Fixtures

    /// Creates a user (as admin) and logs in; returns (guid, token).
    func user(_ name: String) async throws -> (guid: String, token: String) {
        let r = try await post("/v3/users", adminToken, #"{"username":"\#(name)","password":"password-\#(name)"}"#)
        guard r.status == .created else { throw TestFailure("create user \(name): \(r.status) \(r.body)") }
        return (r.guid, try await Self.token(client, name, "password-\(name)"))
    }

    func org(_ name: String) async throws -> String {
        let r = try await post("/v3/organizations", adminToken, #"{"name":"\#(name)"}"#)
        guard r.status == .created else { throw TestFailure("create org \(name): \(r.status) \(r.body)") }
        return r.guid
    }

    func space(_ name: String, org: String) async throws -> String {
        let r = try await post("/v3/spaces", adminToken, #"{"name":"\#(name)","relationships":{"organization":{"data":{"guid":"\#(org)"}}}}"#)
        guard r.status == .created else { throw TestFailure("create space \(name): \(r.status) \(r.body)") }
        return r.guid
    }

    @discardableResult
    func role(_ type: String, user: String, org: String? = nil, space: String? = nil, token: String? = nil) async throws -> Reply {
        let target = org.map { #""organization":{"data":{"guid":"\#($0)"}}"# } ?? #""space":{"data":{"guid":"\#(space!)"}}"#
        return try await post("/v3/roles", token ?? adminToken,
                              #"{"type":"\#(type)","relationships":{"user":{"data":{"guid":"\#(user)"}},\#(target)}}"#)
    }

    func app(_ name: String, space: String, token: String) async throws -> String {
        let r = try await post("/v3/apps", token, #"{"name":"\#(name)","relationships":{"space":{"data":{"guid":"\#(space)"}}}}"#)
        guard r.status == .created else { throw TestFailure("create app \(name): \(r.status) \(r.body)") }
        return r.guid
    }

    var defaultDomainGuid: String {
        get async throws {
            let r = try await get("/v3/domains?names=\(config.defaultDomain)", adminToken)
            guard let guid = r.resources.first?["guid"] as? String else { throw TestFailure("no default domain: \(r.body)") }
            return guid
        }
    }

    func route(_ host: String, space: String, token: String, path: String? = nil) async throws -> Reply {
        let domain = try await defaultDomainGuid
        let pathJSON = path.map { #","path":"\#($0)""# } ?? ""
        return try await post("/v3/routes", token,
                              #"{"host":"\#(host)"\#(pathJSON),"relationships":{"space":{"data":{"guid":"\#(space)"}},"domain":{"data":{"guid":"\#(domain)"}}}}"#)
    }

    /// A tenant: user who is org user + space developer in its own org and space.
    struct Tenant: Sendable {
        let user: String
        let token: String
        let org: String
        let space: String
    }

    func tenant(_ name: String) async throws -> Tenant {
        let (user, token) = try await self.user(name)
        let org = try await self.org("org-\(name)")
        let space = try await self.space("space-\(name)", org: org)
        try await role("organization_user", user: user, org: org)
        try await role("space_developer", user: user, space: space)
        return Tenant(user: user, token: token, org: org, space: space)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
