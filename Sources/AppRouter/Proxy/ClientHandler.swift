import NIOCore

/// One client connection: reads requests, forwards each to a backend connection it owns for
/// the time of the exchange, streams the answer back. The order of the steps is laid out in
/// `RouterPipeline`; the decisions live in pure types (`HeadParser`, `MessageFacts`,
/// `RouterPipeline.admit`, `Balancer`, `RetryPolicy`, `BodyFramer`, `HeadWriter`), this
/// class only carries them out on its event loop.
///
/// Back-pressure: bytes from the client are read only while the backend connection is
/// writable (or, between requests, while at most `maxPendingBytes` wait), bytes from the
/// backend only while the client is writable; nothing is buffered beyond that.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        /// Reading a request head (or idle between requests).
        case awaitingHead
        /// Admitted; waiting for a backend connection.
        case connecting
        /// The request went out; request body and answer stream.
        case forwarding
        /// After `101 Switching Protocols`: bytes copied both ways.
        case tunnel
        /// The last bytes are being flushed; the connection closes next.
        case closing
        case closed
    }

    /// Bytes a client may send ahead (pipelining) before the router stops reading it.
    static let maxPendingBytes = 64 * 1024
    /// Answer bodies up to this size are copied behind their head into one write.
    static let coalesceBytes = 16 * 1024

    /// The loop's context. A strong reference (the context's registry holds this handler until
    /// it closes, which breaks the cycle): `unowned` would cost a check on every access.
    let loop: LoopContext
    let https: Bool
    /// Position in the loop's registry.
    var registryIndex = -1
    var context: ChannelHandlerContext?
    var phase = Phase.awaitingHead
    private var counted = false
    /// The client's address as text (X-Forwarded-For, access log).
    var clientAddress: [UInt8] = Array("-".utf8)
    var clientWritable = true
    private var readPending = false
    /// Uptime (ns) at which the current wait ends; 0 = none.
    var deadline: Int64 = 0
    /// The first bytes of the next request head arrived (its read timeout runs).
    var headStarted = false

    /// Client bytes not processed yet: a partial head, body bytes waiting for a connection,
    /// pipelined requests.
    var pending = ByteBuffer()
    var scanResume = 0
    /// The forwarded request head, reused from request to request.
    var upstreamHead = ByteBuffer()
    /// Heads written to the client, reused.
    var downstream = ByteBuffer()
    /// A partial answer head from the backend.
    var responsePending = ByteBuffer()
    var responseScanResume = 0
    /// Host, request line and user agent of the current request, for its access-log line.
    var logFields = ByteBuffer()
    var fields: [FieldSpan] = []
    var listed: [Range<Int>] = []

    var ex = Exchange()
    /// The backend connection of the current exchange.
    var connection: BackendHandler?
    /// The instance that served (or last tried) the current request, for its log line.
    var lastBackend: Backend?
    /// Changes whenever an attempt starts or an exchange ends, so code that wrote or flushed
    /// (which may run close handlers synchronously) can tell the world moved on.
    var generation = 0
    private var inPendingLoop = false
    private var pendingAgain = false

    init(loop: LoopContext, https: Bool) {
        self.loop = loop
        self.https = https
        fields.reserveCapacity(32)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let allocator = context.channel.allocator
        pending = allocator.buffer(capacity: 0)
        upstreamHead = allocator.buffer(capacity: 1024)
        downstream = allocator.buffer(capacity: 1024)
        responsePending = allocator.buffer(capacity: 0)
        logFields = allocator.buffer(capacity: 256)
        if context.channel.isActive { activate(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    private func activate(_ context: ChannelHandlerContext) {
        guard !counted, phase == .awaitingHead else { return }
        counted = true
        let open = loop.shared.openClientConnections.wrappingAdd(1, ordering: .relaxed).newValue
        if open > loop.settings.maxClientConnections {
            loop.metrics.rejectedConnections += 1
            phase = .closed
            context.close(promise: nil)
            return
        }
        if let address = context.channel.remoteAddress?.ipAddress { clientAddress = Array(address.utf8) }
        clientWritable = context.channel.isWritable
        loop.register(self)
        deadline = loop.now + loop.settings.clientIdleTimeout
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasClosed = phase == .closed
        phase = .closed
        deadline = 0
        loop.unregister(self)
        if counted {
            counted = false
            loop.shared.openClientConnections.wrappingSubtract(1, ordering: .relaxed)
        }
        guard !wasClosed else { return }
        // Client hang-up: the backend connection cannot be reused, the instance is not to blame.
        if let connection {
            self.connection = nil
            connection.close()
        }
        if ex.active {
            if ex.status == 0 || !ex.responseHeadSent && ex.status != 101 {
                ex.status = 499
                ex.routerError = ex.routerError ?? .clientClosed
            }
            recordRequest()
        }
        generation &+= 1
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch phase {
        case .awaitingHead:
            if pending.readableBytes == 0 {
                readHead(from: buffer, buffered: false)
            } else {
                pending.writeBuffer(&buffer)
                readHead(from: pending, buffered: true)
            }
        case .forwarding where !ex.requestComplete:
            forwardRequestBody(buffer)
        case .tunnel:
            ex.bytesReceived += Int64(buffer.readableBytes)
            connection?.write(buffer)
            connection?.flush()
        case .closing, .closed:
            return
        default:
            // Pipelined bytes (or body bytes while dialing): kept for later, bounded by the read gate.
            pending.writeBuffer(&buffer)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clientWritable = context.channel.isWritable
        if clientWritable {
            if phase == .forwarding && deadline > 0 { deadline = loop.now + loop.settings.backendResponseTimeout }
            connection?.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Reset by peer, TLS failures: the close that follows ends the exchange.
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if clientMayRead {
            context.read()
        } else {
            readPending = true
        }
    }

    /// Whether the router wants more bytes from the client now.
    private var clientMayRead: Bool {
        switch phase {
        case .awaitingHead:
            return true
        case .connecting:
            return pending.readableBytes < Self.maxPendingBytes
        case .forwarding:
            if !ex.requestComplete { return connection?.isWritable ?? false }
            return pending.readableBytes < Self.maxPendingBytes
        case .tunnel:
            return connection?.isWritable ?? false
        case .closing:
            // Lingering close: what the client still sends is read and dropped, so its
            // kernel does not answer our close with a reset that could eat the answer.
            return true
        case .closed:
            return false
        }
    }

    /// Passes on a withheld read once the client's bytes can go somewhere again.
    func resumeClientReading() {
        if readPending && clientMayRead, let context {
            readPending = false
            context.read()
        }
    }

    // MARK: Backend connection events (from BackendHandler)

    /// Whether the backend connection may read: only while the client can take the bytes.
    var backendMayRead: Bool {
        clientWritable && (phase == .forwarding || phase == .tunnel)
    }

    func backendWritabilityChanged(writable: Bool) {
        if writable { resumeClientReading() }
    }

    // MARK: Writing to the client

    @inline(__always)
    func clientWrite(_ buffer: ByteBuffer) {
        context?.write(NIOAny(buffer), promise: nil)
    }

    @inline(__always)
    func clientFlush() {
        context?.flush()
    }

    /// Flushes what was written, then closes: for plain connections the sending side first,
    /// reading and dropping whatever the client still sends until it closes too (at most
    /// `lingerNanoseconds`), so the answer is not lost to a reset.
    func closeAfterFlush() {
        guard phase != .closing && phase != .closed, let context else { return }
        phase = .closing
        deadline = loop.now + Self.lingerNanoseconds
        if let connection {
            self.connection = nil
            connection.close()
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        let https = self.https
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard !https, case .success = result else {
                self.forceClose()
                return
            }
            context.close(mode: .output, promise: nil)
            self.resumeClientReading()
        }
    }

    /// The longest a closing connection waits for the client to close its side.
    static let lingerNanoseconds: Int64 = 2_000_000_000

    func forceClose() {
        guard phase != .closed, let context else { return }
        context.close(promise: nil)
    }

    /// Graceful shutdown began: an idle connection closes now, a busy one after its answer.
    func drain() {
        if phase == .awaitingHead && pending.readableBytes == 0 { forceClose() }
    }

    // MARK: Timeouts (from the loop's timer)

    func checkDeadline(now: Int64) {
        guard deadline > 0, now >= deadline else { return }
        deadline = 0
        switch phase {
        case .awaitingHead:
            if pending.readableBytes > 0 {
                // Slowloris: a head started but not finished in time.
                beginExchange()
                pending.withUnsafeReadableBytes { captureLogFields($0, start: 0, end: $0.count, fields: nil, facts: nil) }
                respond(.headerReadTimeout, close: true)
            } else {
                forceClose()
            }
        case .forwarding:
            if !ex.responseStarted && ex.requestComplete {
                backendFailed(.responseTimeout)
            } else {
                // The client stopped sending its body, or the answer stalled after its head.
                if !ex.responseHeadSent { ex.status = 408 }
                if ex.responseStarted { loop.metrics.record(failure: .responseTimeout) }
                recordRequest()
                forceClose()
            }
        case .closing:
            forceClose()
        default:
            break
        }
    }

    // MARK: Between requests

    /// Starts the bookkeeping of a new request.
    func beginExchange() {
        ex = Exchange()
        ex.active = true
        headStarted = false
        ex.startUptime = loop.preciseNow()
        ex.startWall = WallTime.now()
        ex.requestID = loop.ids.make()
        generation &+= 1
    }

    /// The answer is out: next request, or close.
    func afterResponse() {
        if ex.closeAfter || loop.draining {
            closeAfterFlush()
            return
        }
        phase = .awaitingHead
        generation &+= 1
        deadline = loop.now + loop.settings.clientIdleTimeout
        if responsePending.readableBytes > 0 || responsePending.readerIndex > 0 { responsePending.clear() }
        responseScanResume = 0
        if pending.readableBytes > 0 {
            processPending()
        } else {
            if pending.readerIndex > 0 { pending.clear() }
            resumeClientReading()
        }
    }

    /// Handles pipelined requests one after the other without recursion.
    private func processPending() {
        if inPendingLoop {
            pendingAgain = true
            return
        }
        inPendingLoop = true
        defer { inPendingLoop = false }
        repeat {
            pendingAgain = false
            guard phase == .awaitingHead, pending.readableBytes > 0 else { break }
            readHead(from: pending, buffered: true)
        } while pendingAgain
        if phase == .awaitingHead { resumeClientReading() }
    }
}

@available(*, unavailable)
extension ClientHandler: Sendable {}
