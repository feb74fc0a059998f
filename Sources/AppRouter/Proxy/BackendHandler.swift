import NIOCore

/// One connection to a backend instance. It does I/O only: bytes read go to the client
/// connection that owns it; without an owner (idle in the pool) any byte or EOF ends it.
/// Reads are passed on only while the owner can take them (the client is writable).
final class BackendHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let backend: Backend
    /// The loop's context. A strong reference (the context's pool holds this handler while it
    /// is idle; closing it breaks the cycle): `unowned` would cost a check on every access.
    let loop: LoopContext
    /// The client connection using this one; nil while pooled.
    var owner: ClientHandler?
    private var context: ChannelHandlerContext?
    private(set) var isOpen = true
    /// The connection has carried a request before (it came from the pool).
    var reused = false
    /// Uptime (ns) since when it is idle in the pool.
    var idleSince: Int64 = 0
    private(set) var isWritable = true
    private var readPending = false

    init(backend: Backend, loop: LoopContext) {
        self.backend = backend
        self.loop = loop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isWritable = context.channel.isWritable
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let owner else {
            // Nothing may arrive on an idle keep-alive connection.
            loop.pool.remove(self)
            context.close(promise: nil)
            return
        }
        owner.backendRead(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        if let owner {
            self.owner = nil
            owner.backendClosed(self)
        } else {
            loop.pool.remove(self)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The close that follows reports the failure to the owner.
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        owner?.backendWritabilityChanged(writable: isWritable)
    }

    func read(context: ChannelHandlerContext) {
        if owner?.backendMayRead ?? true {
            context.read()
        } else {
            readPending = true
        }
    }

    // MARK: Used by the owning client connection

    @inline(__always)
    func write(_ buffer: ByteBuffer) {
        context?.write(NIOAny(buffer), promise: nil)
    }

    @inline(__always)
    func flush() {
        context?.flush()
    }

    /// Passes on a withheld read once the owner can take data again.
    @inline(__always)
    func resumeReading() {
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// Closes without telling any owner (the caller detached it or is it).
    func close() {
        owner = nil
        guard isOpen, let context else { return }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension BackendHandler: Sendable {}
