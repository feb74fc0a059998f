import Foundation
import NIOCore
import NIOPosix
import PlatformModels
import Testing

@testable import ExecutionAgent

/// A loopback server answering every connection with a fixed response (or nothing).
final class CannedServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init(response: String?) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(Responder(response: response))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async { try? await channel.close() }

    final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let response: String?
        init(response: String?) { self.response = response }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let response else { return }
            context.writeAndFlush(NIOAny(ByteBuffer(string: response)), promise: nil)
            context.close(promise: nil)
        }
    }
}

/// A loopback TCP port held by a bound socket that never listens: connecting to it is refused.
struct BoundPort {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func release() { close(fd) }
}

@Suite struct HealthProbeTests {
    let probe = HealthProbe()

    @Test func portCheckPassesOnAListenerAndFailsOnAClosedPort() async throws {
        let server = try await CannedServer(response: nil)
        #expect(await probe.check(HealthCheckSpec(type: .port), address: "127.0.0.1", port: server.port) == .healthy)
        await server.close()
        // A port bound without listening refuses connections, and no other test's server can
        // take it meanwhile (a closed listener's port could be handed to one running beside us).
        let closed = try BoundPort()
        defer { closed.release() }
        let port = closed.port
        let outcome = await probe.check(HealthCheckSpec(type: .port), address: "127.0.0.1", port: port)
        guard case .unhealthy(let words) = outcome else { Issue.record("closed port passed"); return }
        #expect(words.contains("Failed to make TCP connection to port \(port)"))
    }

    @Test func httpCheckNeeds200() async throws {
        let ok = try await CannedServer(response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let bad = try await CannedServer(response: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        defer { Task { await ok.close(); await bad.close() } }
        #expect(await probe.check(HealthCheckSpec(type: .http, endpoint: "/health"), address: "127.0.0.1", port: ok.port) == .healthy)
        let outcome = await probe.check(HealthCheckSpec(type: .http, endpoint: "/health"), address: "127.0.0.1", port: bad.port)
        #expect(outcome == .unhealthy("Failed to get HTTP 200 from /health: got 503"))
    }

    @Test func httpCheckTimesOutOnASilentServer() async throws {
        let silent = try await CannedServer(response: nil)
        defer { Task { await silent.close() } }
        let probe = self.probe
        let port = silent.port
        let started = ContinuousClock.now
        // A silent server never answers nor closes: only the 1 s invocation timeout ends the check.
        // The guard turns a missing timeout into a failure instead of a hung run; it is wide
        // because a loaded 2-core machine running every suite at once has lagged resumptions by
        // more than 20 s. What proves the timeout is the outcome's words, not the wall clock.
        let outcome: HealthProbe.Outcome? = await withTaskGroup(of: HealthProbe.Outcome?.self) { group in
            group.addTask {
                await probe.check(HealthCheckSpec(type: .http, invocationTimeoutSeconds: 1), address: "127.0.0.1", port: port)
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(120))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        #expect(outcome == .unhealthy("Failed to get HTTP 200 from /: timed out"), "the 1 s invocation timeout ends it")
        #expect(ContinuousClock.now - started >= .seconds(1), "not before the timeout")
    }

    @Test func endpointIsNormalised() {
        #expect(HealthProbe.normalisedPath(nil) == "/")
        #expect(HealthProbe.normalisedPath("health") == "/")
        #expect(HealthProbe.normalisedPath("/a b") == "/")
        #expect(HealthProbe.normalisedPath("/x\r\nHost: evil") == "/")
        #expect(HealthProbe.normalisedPath("/status?full=1") == "/status?full=1")
    }

    @Test func processChecksNeedNoProbe() async {
        #expect(await probe.check(HealthCheckSpec(type: .process), address: "192.0.2.1", port: 1) == .healthy)
    }
}
