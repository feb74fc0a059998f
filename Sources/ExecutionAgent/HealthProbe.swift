import Foundation
import NIOCore
import NIOPosix
import PlatformModels

/// The health checks of CONTRACTS.md: `port` (a TCP connection within the invocation timeout),
/// `http` (GET of the endpoint answers 200 within it) and `process` (alive = healthy, checked by
/// the agent from the container's exit, so nothing to probe here).
public struct HealthProbe: Sendable {
    /// Result of one probe, with words for the crash report when it failed.
    public enum Outcome: Sendable, Equatable {
        case healthy
        case unhealthy(String)
    }

    private let group: any EventLoopGroup

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
    }

    /// Runs the check against `address:port`.
    public func check(_ spec: HealthCheckSpec, address: String, port: Int) async -> Outcome {
        let timeout = TimeAmount.milliseconds(Int64(max(1, spec.invocationTimeoutSeconds)) * 1000)
        switch spec.type {
        case .process:
            return .healthy
        case .port:
            do {
                let channel = try await connect(address: address, port: port, timeout: timeout, handler: nil)
                try? await channel.close()
                return .healthy
            } catch {
                return .unhealthy("Failed to make TCP connection to port \(port): \(Self.words(error))")
            }
        case .http:
            let path = Self.normalisedPath(spec.endpoint)
            let collector = StatusLineCollector(promise: group.next().makePromise(of: Int.self))
            do {
                let channel = try await connect(address: address, port: port, timeout: timeout, handler: collector)
                let request = "GET \(path) HTTP/1.1\r\nHost: \(address):\(port)\r\nUser-Agent: cf-like-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n"
                let status: Int
                do {
                    try await channel.writeAndFlush(ByteBuffer(string: request))
                    let deadline = channel.eventLoop.scheduleTask(in: timeout) {
                        collector.expire()
                    }
                    defer { deadline.cancel() }
                    status = try await collector.promise.futureResult.get()
                } catch {
                    try? await channel.close()
                    throw error
                }
                try? await channel.close()
                return status == 200 ? .healthy : .unhealthy("Failed to get HTTP 200 from \(path): got \(status)")
            } catch {
                // A failed connect never reached the handler; its promise must still be completed.
                collector.promise.fail(error)
                return .unhealthy("Failed to get HTTP 200 from \(path): \(Self.words(error))")
            }
        }
    }

    /// `/` unless the endpoint is an absolute path without spaces or control characters.
    static func normalisedPath(_ endpoint: String?) -> String {
        guard let endpoint, endpoint.hasPrefix("/"),
              !endpoint.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f }) else { return "/" }
        return endpoint
    }

    private func connect(address: String, port: Int, timeout: TimeAmount,
                         handler: StatusLineCollector?) async throws -> any Channel {
        try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                guard let handler else { return channel.eventLoop.makeSucceededVoidFuture() }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .connect(host: address, port: port).get()
    }

    static func words(_ error: any Error) -> String {
        if let io = error as? IOError { return io.description }
        if case ChannelError.connectTimeout = error as? ChannelError ?? .alreadyClosed { return "timed out" }
        if let channel = error as? ChannelError, case .eof = channel { return "connection closed before an answer" }
        return String(describing: error)
    }
}

/// Collects the first line of an HTTP answer and fulfils the promise with its status code.
private final class StatusLineCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<Int>
    private var buffer = ByteBuffer()
    private var done = false

    init(promise: EventLoopPromise<Int>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 8192 { finish(.failure(ChannelError.inputClosed)) }
            return
        }
        let line = String(decoding: view[view.startIndex..<newline], as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        if parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]) {
            finish(.success(code))
        } else {
            finish(.failure(ChannelError.inputClosed))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(ChannelError.eof))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    /// Called on the channel's event loop when the invocation timeout passes.
    func expire() { finish(.failure(ChannelError.connectTimeout(.zero))) }

    private func finish(_ result: Result<Int, any Error>) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
    }
}
