import Foundation
import Hummingbird
import HummingbirdTesting
import PlatformModels
import PostgresStore
import Testing
import TestSupport

@testable import CloudController

#if canImport(Glibc)
import Glibc
#endif

/// A platform served on a loopback socket (a real HTTP server), for streamed answers.
struct LivePlatform: Sendable {
    let platform: Platform
    let port: Int
    let feed: ChangeFeed

    static func run(configure: [String: String] = [:], _ body: @Sendable (LivePlatform) async throws -> Void) async throws {
        let database = try await ScratchDatabase.create(logger: testLogger)
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("cc-live-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }
        try FileManager.default.createDirectory(at: home.appendingPathComponent("var/secrets"), withIntermediateDirectories: true)
        try "test-signing-key-0123456789abcdefghijklmnopqrstuvwxyz".write(
            to: home.appendingPathComponent("var/secrets/token-signing-key"), atomically: true, encoding: .utf8)
        try Platform.componentCredential.write(
            to: home.appendingPathComponent("var/secrets/internal-credential"), atomically: true, encoding: .utf8)
        var env = [
            "CFLIKE_PLATFORM_HOME": home.path,
            "CFLIKE_CONTROLLER_DATABASE_URL": database.conninfo,
            "CFLIKE_CONTROLLER_EXTERNAL_URL": Platform.baseURL,
            "CFLIKE_CONTROLLER_PASSWORD_KDF_ROUNDS": String(PasswordHasher.minimumRounds),
        ]
        env.merge(configure) { $1 }
        let config = try ControllerConfig(document: try ConfigDocument(path: nil, environment: env))
        let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: database.conninfo, poolSize: 4),
                                threadPool: sharedThreadPool, logger: testLogger)
        do {
            try await CloudController.prepareDatabase(pool: pool, config: config, logger: testLogger)
            _ = try await CloudController.bootstrapAdmin(pool: pool, config: config, threadPool: sharedThreadPool,
                                                         username: "admin", password: Platform.adminPassword)
            let feed = ChangeFeed(pool: pool, logger: testLogger)
            let router = CloudController.buildRouter(config: config, pool: pool, threadPool: sharedThreadPool, feed: feed, logger: testLogger)
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: testLogger)
            try await app.test(.live) { client in
                let port = try #require(client.port)
                let token = try await Platform.token(client, "admin", Platform.adminPassword)
                try await body(LivePlatform(platform: Platform(config: config, pool: pool, client: client, adminToken: token, feed: feed),
                                            port: port, feed: feed))
            }
            feed.stop()
        } catch {
            await pool.shutdown()
            await database.drop()
            throw error
        }
        await pool.shutdown()
        await database.drop()
    }
}

/// One HTTP/1.1 request on its own loopback connection, read incrementally.
final class RawHTTPConnection: @unchecked Sendable {
    private var fd: Int32
    private(set) var received = ""

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close()
            throw TestFailure("connect: \(String(cString: strerror(errno)))")
        }
    }

    deinit { close() }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw TestFailure("send: \(String(cString: strerror(errno)))") }
    }

    /// Reads until `done` holds for everything received so far, or throws after `timeout`.
    @discardableResult
    func read(until done: (String) -> Bool, timeout: Duration) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while !done(received) {
            guard ContinuousClock.now < deadline else { throw TestFailure("timed out; received so far:\n\(received)") }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&descriptor, 1, 0) > 0 {
                var buffer = [UInt8](repeating: 0, count: 65536)
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { throw TestFailure("connection closed; received:\n\(received)") }
                received += String(decoding: buffer[..<n], as: UTF8.self)
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return received
    }

    /// The payload of a chunked body received so far (the head skipped; a partial last chunk ignored).
    static func chunkedBody(of text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        let separator = Array("\r\n\r\n".utf8)
        guard var i = (0...(bytes.count - separator.count)).first(where: { Array(bytes[$0..<$0 + separator.count]) == separator })
        else { return [] }
        i += separator.count
        var body: [UInt8] = []
        while let lineEnd = (i..<max(i, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
              let size = Int(String(decoding: bytes[i..<lineEnd], as: UTF8.self), radix: 16), size > 0,
              lineEnd + 2 + size <= bytes.count {
            body += bytes[(lineEnd + 2)..<(lineEnd + 2 + size)]
            i = lineEnd + 2 + size + 2
        }
        return body
    }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }
}

extension ControllerIntegration {
    @Suite(.timeLimit(.minutes(2))) struct LogsFollow {
        @Test func aFollowedLogStreamDeliversLinesAsTheyArriveUntilTheClientHangsUp() async throws {
            let clock = ContinuousClock()
            let leftOpen = LeftOpen()
            try await LivePlatform.run(configure: ["CFLIKE_CONTROLLER_LOG_STREAM_KEEPALIVE_SECONDS": "1"]) { live in
                let p = live.platform
                let t = try await p.tenant("alice")
                let app = try await p.app("web", space: t.space, token: t.token)
                #expect(try await p.ship([Platform.line(app, "before the stream")]).status == .ok)

                let stream = try RawHTTPConnection(port: live.port)
                try stream.send("GET /v3/apps/\(app)/logs?follow=true HTTP/1.1\r\nHost: localhost\r\nAuthorization: bearer \(t.token)\r\n\r\n")
                let head = try await stream.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(10))
                #expect(head.hasPrefix("HTTP/1.1 200"))
                #expect(head.lowercased().contains("content-type: application/x-ndjson"))
                // The stream subscribes once its body starts (lines in between are read from its cursor).
                let subscribed = clock.now + .seconds(20)
                while live.feed.subscriberCount == 0, clock.now < subscribed { try await Task.sleep(for: .milliseconds(10)) }
                #expect(live.feed.subscriberCount == 1)

                let shipped = clock.now
                #expect(try await p.ship([Platform.line(app, "hello from the app")]).status == .ok)
                let text = try await stream.read(until: { $0.contains("hello from the app") }, timeout: .seconds(5))
                let delay = clock.now - shipped
                print("followed log line arrived \(delay) after it was shipped")
                #expect(delay < .seconds(1))
                #expect(!text.contains("before the stream"), "a follow starts at the end of the log")
                let lines = RawHTTPConnection.chunkedBody(of: text).split(separator: UInt8(ascii: "\n"))
                let json = try #require(lines.first { String(decoding: $0, as: UTF8.self).contains("hello from the app") })
                let line = try JSONDecoder().decode(LogLine.self, from: Data(json))
                #expect(line.appGUID == app && line.message == "hello from the app" && line.sourceType == "APP/PROC/WEB")

                // Keep-alive lines arrive while nothing happens.
                let quiet = stream.received.count
                try await stream.read(until: { $0.count > quiet }, timeout: .seconds(3))

                // Hanging up ends the stream (noticed at the next keep-alive write).
                stream.close()
                let deadline = clock.now + .seconds(10)
                while live.feed.subscriberCount > 0, clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
                #expect(live.feed.subscriberCount == 0)

                // A stream still open at shutdown ends with it.
                let open = try RawHTTPConnection(port: live.port)
                try open.send("GET /v3/apps/\(app)/logs?follow=true HTTP/1.1\r\nHost: localhost\r\nAuthorization: bearer \(t.token)\r\n\r\n")
                try await open.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(10))
                leftOpen.set(open, at: clock.now)
            }
            let (open, started) = try #require(leftOpen.get())
            defer { open.close() }
            let shutdown = clock.now - started
            #expect(shutdown < .seconds(10), "graceful shutdown took \(shutdown)")
            // The server finished the chunked body (the last chunk) instead of dropping the connection.
            try await open.read(until: { $0.contains("\r\n0\r\n\r\n") }, timeout: .seconds(5))
        }

        /// Keeps a connection open past the platform's closure.
        final class LeftOpen: @unchecked Sendable {
            private let lock = NSLock()
            private var value: (RawHTTPConnection, ContinuousClock.Instant)?
            func set(_ connection: RawHTTPConnection, at instant: ContinuousClock.Instant) { lock.withLock { value = (connection, instant) } }
            func get() -> (RawHTTPConnection, ContinuousClock.Instant)? { lock.withLock { value } }
        }
    }
}
