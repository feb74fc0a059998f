import Foundation
import Logging
import NIOCore
import NIOPosix
import PlatformModels
import ServiceLifecycle
import Synchronization
import Testing

@testable import AppRouter

/// An HTTP answer as a test sees it.
struct TestResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func headers(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

struct ConnectionClosed: Error {}

/// One raw TCP connection: send any bytes, parse answers by hand (so malformed exchanges and
/// connection closes are visible).
struct RawConnection {
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var buffer = ByteBuffer()
    var eof = false

    mutating func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    mutating func send(_ bytes: ByteBuffer) async throws {
        try await outbound.write(bytes)
    }

    /// Reads more bytes; false at end of stream.
    mutating func fill() async throws -> Bool {
        guard !eof else { return false }
        do {
            guard var more = try await inbound.next() else {
                eof = true
                return false
            }
            buffer.writeBuffer(&more)
            return true
        } catch {
            eof = true
            return false
        }
    }

    /// Whether the peer closed the connection (reading and discarding until it does).
    mutating func waitForClose() async throws -> Bool {
        while try await fill() { buffer.clear() }
        return true
    }

    /// Reads everything until the peer closes.
    mutating func readToEnd() async throws -> String {
        while try await fill() {}
        let text = buffer.readString(length: buffer.readableBytes) ?? ""
        return text
    }

    /// Reads one answer (interim answers included as answers of their own).
    mutating func readResponse(headRequest: Bool = false) async throws -> TestResponse {
        var headEnd: Int?
        while headEnd == nil {
            if let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes), let r = text.range(of: "\r\n\r\n") {
                headEnd = text.utf8.distance(from: text.startIndex, to: r.upperBound)
            } else if !(try await fill()) {
                throw ConnectionClosed()
            }
        }
        let head = buffer.readString(length: headEnd!)!
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = Int(statusLine[1]) ?? 0
        let headers = lines.map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = TestResponse(status: status, headers: headers, body: [])
        if headRequest || status < 200 || status == 204 || status == 304 { return response }
        if let length = response.header("Content-Length").flatMap(Int.init) {
            while buffer.readableBytes < length {
                guard try await fill() else { throw ConnectionClosed() }
            }
            response.body = buffer.readBytes(length: length) ?? []
        } else if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                let line = try await readLine()
                let size = Int(line.split(separator: ";")[0], radix: 16) ?? 0
                if size == 0 {
                    while try await readLine() != "" {}
                    break
                }
                while buffer.readableBytes < size + 2 {
                    guard try await fill() else { throw ConnectionClosed() }
                }
                response.body += buffer.readBytes(length: size) ?? []
                buffer.moveReaderIndex(forwardBy: 2)
            }
        } else {
            while try await fill() {}
            response.body = buffer.readBytes(length: buffer.readableBytes) ?? []
        }
        return response
    }

    private mutating func readLine() async throws -> String {
        while true {
            if let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes), let r = text.range(of: "\r\n") {
                let line = String(text[..<r.lowerBound])
                buffer.moveReaderIndex(forwardBy: line.utf8.count + 2)
                return line
            }
            guard try await fill() else { throw ConnectionClosed() }
        }
    }
}

/// Opens a connection to 127.0.0.1:`port` for the time of `body`.
func withConnection<T: Sendable>(_ port: Int, _ body: (inout RawConnection) async throws -> T) async throws -> T {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        var connection = RawConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound)
        return try await body(&connection)
    }
}

/// One request on a fresh connection.
func request(_ port: Int, host: String, _ path: String = "/", method: String = "GET", headers: [String] = [],
             body: String? = nil) async throws -> TestResponse {
    try await withConnection(port) { c in
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for h in headers { text += h + "\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        try await c.send(text)
        return try await c.readResponse(headRequest: method == "HEAD")
    }
}

/// A plain GET of the status server.
func status(_ port: Int, _ path: String) async throws -> TestResponse {
    try await request(port, host: "127.0.0.1", path)
}

/// Runs a router (two event loops, short timeouts) for the time of `body`, then shuts it
/// down gracefully and waits for it to finish.
func withRouter(source: any RouteTableSource, _ configure: (inout RouterConfig) -> Void = { _ in },
                _ body: (RouterAddresses) async throws -> Void) async throws {
    var config = RouterConfig(controllerURL: "http://127.0.0.1:9", credential: StubController.credential)
    config.threads = 2
    config.drainTimeoutSeconds = 2
    config.routeTablePollSeconds = 5
    config.dialTimeoutMilliseconds = 1000
    configure(&config)
    var logger = Logger(label: "router-test")
    logger.logLevel = .critical
    let router = AppRouter(config: config, logger: logger, source: source)
    let group = ServiceGroup(services: [router], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let addresses = try await router.listening()
            try await waitUntilHealthy(addresses.status)
            try await body(addresses)
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}

/// Waits until `/health` answers 200 (the first route table arrived).
func waitUntilHealthy(_ port: Int) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: .seconds(10))
    while clock.now < deadline {
        if let answer = try? await status(port, "/health"), answer.status == 200 { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("router never became healthy")
}

/// Polls `condition` every 10 ms until it holds; fails with `what` after `within`.
func eventually(_ what: String, within: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now.advanced(by: within)
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else { throw RouterError("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// The value of one metric line (`name{labels} value`) from `/metrics`.
func metric(_ port: Int, _ series: String) async throws -> Double? {
    let text = try await status(port, "/metrics").text
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// The resident set size of this process, bytes.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
    return kb * 1024
}

/// A one-route table: `host` to `backends`.
func table(_ version: Int = 1, _ entries: [(host: String, path: String, backends: [RouteBackend])]) -> RouteTable {
    RouteTable(version: version, routes: entries.enumerated().map { i, e in
        RouteTableEntry(routeGUID: "route-\(i)", host: e.host, path: e.path, backends: e.backends)
    })
}

extension RawConnection {
    /// Reads an answer's head only (its body stays unread).
    mutating func readResponseHead() async throws -> TestResponse {
        while true {
            if let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes), let r = text.range(of: "\r\n\r\n") {
                let length = text.utf8.distance(from: text.startIndex, to: r.upperBound)
                let head = buffer.readString(length: length) ?? ""
                let status = Int(head.split(separator: " ")[1]) ?? 0
                return TestResponse(status: status, headers: [], body: [])
            }
            guard try await fill() else { throw ConnectionClosed() }
        }
    }

    /// Reads and discards `count` body bytes (after what is buffered), returning how many came.
    mutating func discard(_ count: Int) async throws -> Int {
        var seen = min(buffer.readableBytes, count)
        buffer.moveReaderIndex(forwardBy: seen)
        while seen < count {
            guard let more = try await inbound.next() else { break }
            seen += more.readableBytes
        }
        buffer.clear()
        return seen
    }
}

/// The peak a memory sampler saw, and its stop flag.
final class MemorySampler: Sendable {
    let peak = Atomic<Int>(0)
    let done = Atomic<Bool>(false)
}

/// Samples this process's resident memory while `body` runs; returns the body's result and
/// the largest growth over the resident size at the start.
func measuringMemory<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> (T, growth: Int) {
    let start = residentBytes()
    let sampler = MemorySampler()
    sampler.peak.store(start, ordering: .relaxed)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            while !sampler.done.load(ordering: .relaxed) {
                let now = residentBytes()
                if now > sampler.peak.load(ordering: .relaxed) { sampler.peak.store(now, ordering: .relaxed) }
                try await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }
        let result = try await body()
        sampler.done.store(true, ordering: .relaxed)
        try await group.waitForAll()
        return (result, sampler.peak.load(ordering: .relaxed) - start)
    }
}
