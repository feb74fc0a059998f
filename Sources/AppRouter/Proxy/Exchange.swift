/// The state of one request/answer exchange on a client connection, reset per request.
struct Exchange {
    /// A request is being handled (it gets an access-log line when it ends).
    var active = false
    var route: Route?
    /// The instance assigned to the current attempt (counted in its `inFlight`).
    var backend: Backend?
    /// Attempts started (1-based once the first began).
    var attempt = 0
    var tried = TriedBackends()
    /// Safe method without a body: may be resent after a stale pooled connection.
    var replayable = false
    /// The next attempt must dial instead of taking a pooled connection.
    var forceFresh = false
    /// `X-Cf-App-Instance` fixed the instance.
    var targeted = false
    /// The request's `__VCAP_ID__` named an instance that could not serve it: re-pin the session.
    var stickyRepin = false

    // Request side
    var requestFramer = BodyFramer.none
    var requestComplete = false
    var requestBytesWritten = false
    /// Set while the first bytes of an attempt are being flushed: a close reported then means
    /// they never reached the backend.
    var flushingFirstWrite = false
    /// Where the instance's own headers start in the forwarded head.
    var headTailMark = 0
    var isHead = false
    var upgrade = false
    var clientMinorVersion: UInt8 = 1
    /// Close the client connection once the answer is out.
    var closeAfter = false

    // Response side
    /// A byte of the backend's answer arrived.
    var responseStarted = false
    /// The final answer's head was parsed.
    var responseHeadDone = false
    /// The final answer's head went to the client (a 502 is no longer possible).
    var responseHeadSent = false
    var responseFramer = BodyFramer.none
    var dechunk = false
    var backendReusable = true

    // Access log and metrics
    var status = 0
    var bytesReceived: Int64 = 0
    var bytesSent: Int64 = 0
    var startUptime: Int64 = 0
    var startWall = WallTime(seconds: 0, milliseconds: 0)
    var requestID: RequestID?
    var routerError: RouterAnswer.Code?
    var logLengths = (host: 0, requestLine: 0, userAgent: 0)
}
