import NIOCore
import NIOPosix

/// What reading a request head led to.
enum HeadOutcome {
    case incomplete(resume: Int)
    /// The router answers itself; `consumed` bytes of input are done with.
    case answer(RouterAnswer, consumed: Int, close: Bool)
    /// Admitted: forward it; the head was `consumed` bytes long.
    case forward(consumed: Int)
}

extension ClientHandler {
    // MARK: Steps 1-4: head, framing, admission, rewrite

    /// Reads a request head from `source`, which is either the bytes just read (`buffered`
    /// false: parsed in place, nothing copied unless a part remains) or `pending`.
    func readHead(from source: ByteBuffer, buffered: Bool) {
        let outcome = source.withUnsafeReadableBytes { parseRequest($0) }
        switch outcome {
        case .incomplete(let resume):
            if !buffered {
                var rest = source
                pending.writeBuffer(&rest)
            }
            scanResume = resume
            // The head started: from its first bytes it has the header read timeout to finish,
            // however slowly the rest trickles in.
            if !headStarted {
                headStarted = true
                deadline = loop.now + loop.settings.headerReadTimeout
            }
        case .answer(let answer, let consumed, let close):
            consume(consumed, of: source, buffered: buffered)
            respond(answer, close: close)
        case .forward(let consumed):
            consume(consumed, of: source, buffered: buffered)
            startAttempt()
        }
    }

    /// Drops a processed head; whatever follows it stays in `pending`.
    private func consume(_ count: Int, of source: ByteBuffer, buffered: Bool) {
        scanResume = 0
        if buffered {
            pending.moveReaderIndex(forwardBy: count)
        } else if source.readableBytes > count, let rest = source.getSlice(at: source.readerIndex + count, length: source.readableBytes - count) {
            var rest = rest
            pending.writeBuffer(&rest)
        }
    }

    private func parseRequest(_ p: UnsafeRawBufferPointer) -> HeadOutcome {
        let settings = loop.settings
        let start = HeadParser.skipLeadingEmptyLines(p)
        let end: Int
        switch HeadParser.scan(p, from: max(scanResume, start)) {
        case .incomplete(let resume):
            if p.count - start > settings.maxHeaderBytes {
                beginExchange()
                captureLogFields(p, start: start, end: p.count, fields: nil, facts: nil)
                return .answer(.headersTooLarge, consumed: p.count, close: true)
            }
            return .incomplete(resume: resume)
        case .complete(let headEnd):
            end = headEnd
        }
        beginExchange()
        if end - start > settings.maxHeaderBytes {
            captureLogFields(p, start: start, end: end, fields: nil, facts: nil)
            return .answer(.headersTooLarge, consumed: end, close: true)
        }

        // 1. Syntax.
        let line: RequestLine
        do throws(HeadError) {
            let (requestLine, fieldsStart) = try HeadParser.parseRequestLine(p, start: start, headEnd: end)
            line = requestLine
            try HeadParser.parseFields(p, from: fieldsStart, headEnd: end, maxFields: settings.maxHeaderFields, into: &fields)
        } catch {
            captureLogFields(p, start: start, end: end, fields: nil, facts: nil)
            let answer: RouterAnswer = error == .tooManyFields ? .headersTooLarge : .badRequest("Malformed request: \(error).")
            return .answer(answer, consumed: end, close: true)
        }
        ex.clientMinorVersion = line.minorVersion
        ex.isHead = HTTPSyntax.equalsLowercase(p, line.start, line.methodEnd - line.start, "head")

        // 2. Framing.
        let facts: MessageFacts
        do throws(FramingError) {
            facts = try MessageFacts.read(p, fields: fields, minorVersion: line.minorVersion, request: true, listed: &listed)
        } catch {
            captureLogFields(p, start: start, end: end, fields: fields, facts: nil)
            return .answer(.badRequest("Invalid request framing: \(error)."), consumed: end, close: true)
        }
        captureLogFields(p, start: start, end: end, fields: fields, facts: facts)
        let hasBody = facts.chunked || facts.contentLength > 0
        ex.closeAfter = facts.close || line.minorVersion == 0

        // 3. Admission: route, instance.
        let admission: RouterPipeline.Admission
        switch RouterPipeline.admit(p, line: line, fields: fields, facts: facts, snapshot: loop.snapshot,
                                    balancer: settings.balancer, now: loop.now) {
        case .answer(let answer):
            return .answer(answer, consumed: end, close: hasBody || ex.closeAfter)
        case .forward(let decided):
            admission = decided
        }
        ex.route = admission.route
        assign(admission.backend)
        ex.targeted = admission.targeted
        ex.upgrade = facts.connectionUpgrade && facts.upgradeField >= 0
        ex.requestFramer = facts.chunked ? .chunked : .length(max(0, facts.contentLength))
        ex.requestComplete = !hasBody
        ex.replayable = RetryPolicy.isReplayable(method: p, line.start, line.methodEnd, hasBody: hasBody)
        ex.stickyRepin = admission.stickyMiss
        let requestID = ex.requestID ?? loop.ids.make()

        // 4. The forwarded head, up to the instance's own headers.
        upstreamHead.clear()
        HeadWriter.writeRequestHead(into: &upstreamHead, p, line: line, target: admission.target, fields: fields,
                                    facts: facts, listed: listed, upgrade: ex.upgrade, client: clientAddress,
                                    https: https, requestID: requestID)
        ex.headTailMark = upstreamHead.writerIndex
        return .forward(consumed: end)
    }

    /// Keeps host, request line and user agent for the access log (the head's bytes go away).
    func captureLogFields(_ p: UnsafeRawBufferPointer, start: Int, end: Int, fields: [FieldSpan]?, facts: MessageFacts?) {
        guard loop.shared.accessLog.isEnabled else { return }
        logFields.clear()
        var hostLength = 0
        if let fields, let facts, facts.hostField >= 0 {
            let host = fields[facts.hostField]
            hostLength = min(host.valueEnd - host.valueStart, 256)
            logFields.writeBytes(UnsafeRawBufferPointer(rebasing: p[host.valueStart..<(host.valueStart + hostLength)]))
        }
        var lineEnd = start
        let limit = min(end, start + 2048)
        while lineEnd < limit, p[lineEnd] != HTTPSyntax.cr, p[lineEnd] != HTTPSyntax.lf { lineEnd += 1 }
        logFields.writeBytes(UnsafeRawBufferPointer(rebasing: p[start..<lineEnd]))
        var agentLength = 0
        if let fields, let facts, facts.userAgentField >= 0 {
            let agent = fields[facts.userAgentField]
            agentLength = min(agent.valueEnd - agent.valueStart, 512)
            logFields.writeBytes(UnsafeRawBufferPointer(rebasing: p[agent.valueStart..<(agent.valueStart + agentLength)]))
        }
        ex.logLengths = (hostLength, lineEnd - start, agentLength)
    }

    // MARK: Router-made answers

    /// Answers with the router's own status and `X-Cf-RouterError`, then reads the next
    /// request or closes.
    func respond(_ answer: RouterAnswer, close: Bool) {
        ex.status = answer.status
        ex.routerError = answer.code
        let close = close || ex.closeAfter || loop.draining
        ex.closeAfter = close
        ex.responseHeadSent = true
        downstream.clear()
        HeadWriter.writeAnswer(into: &downstream, answer, close: close, headRequest: ex.isHead)
        clientWrite(downstream)
        clientFlush()
        recordRequest()
        if phase != .closed { afterResponse() }
    }

    /// One access-log line and the metrics for the request that just ended.
    func recordRequest() {
        guard ex.active else { return }
        ex.active = false
        release()
        let duration = loop.preciseNow() - ex.startUptime
        loop.metrics.record(status: ex.status, durationNanoseconds: duration)
        if let code = ex.routerError { loop.metrics.record(error: code) }
        guard loop.shared.accessLog.isEnabled else { return }
        let entry = AccessLogEntry(startWall: ex.startWall, status: ex.status, bytesReceived: ex.bytesReceived,
                                   bytesSent: ex.bytesSent, durationNanoseconds: duration, requestID: ex.requestID,
                                   backend: ex.route == nil ? nil : lastBackend, routerError: ex.routerError)
        loop.accessLog.append(entry, fields: logFields, lengths: ex.logLengths, client: clientAddress, clock: &loop.clock)
        if loop.accessLog.buffer.readableBytes >= AccessLogBuffer.flushThreshold {
            loop.accessLog.flush(to: loop.shared.accessLog)
        }
    }

    // MARK: Step 5: a connection to the instance

    /// Counts the request against an instance.
    func assign(_ backend: Backend) {
        ex.backend = backend
        lastBackend = backend
        backend.inFlight.wrappingAdd(1, ordering: .relaxed)
    }

    /// Stops counting the request against its instance.
    func release() {
        if let backend = ex.backend {
            backend.inFlight.wrappingSubtract(1, ordering: .relaxed)
            ex.backend = nil
        }
    }

    /// Takes a pooled connection to the assigned instance or dials one.
    func startAttempt() {
        guard let backend = ex.backend else { return }
        ex.attempt += 1
        ex.requestBytesWritten = false
        ex.responseStarted = false
        generation &+= 1
        phase = .connecting
        deadline = 0
        if !ex.forceFresh, let pooled = loop.pool.take(backend) {
            attach(pooled, reused: true)
            sendRequest()
            return
        }
        ex.forceFresh = false
        dial(backend)
    }

    private func dial(_ backend: Backend) {
        let handler = BackendHandler(backend: backend, loop: loop)
        let bound = NIOLoopBound(handler, eventLoop: loop.eventLoop)
        let attempt = generation
        ClientBootstrap(group: loop.eventLoop)
            .connectTimeout(loop.settings.dialTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .connect(to: backend.address)
            .assumeIsolated()
            .whenComplete { result in
                self.dialed(handler, result: result, attempt: attempt)
            }
    }

    private func dialed(_ handler: BackendHandler, result: Result<any Channel, any Error>, attempt: Int) {
        switch result {
        case .success:
            guard attempt == generation, phase == .connecting else {
                // The client moved on; the fresh connection serves a later request.
                if !loop.pool.put(handler, now: loop.now) { handler.close() }
                return
            }
            attach(handler, reused: false)
            sendRequest()
        case .failure(let error):
            guard attempt == generation, phase == .connecting else { return }
            backendFailed(.connectFailed(Self.describe(error)))
        }
    }

    private func attach(_ handler: BackendHandler, reused: Bool) {
        connection = handler
        handler.owner = self
        handler.reused = reused
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        if let error = error as? ChannelError, case .connectTimeout = error { return "dial timeout" }
        return String(describing: error)
    }

    // MARK: Step 6: request bytes to the backend

    /// Writes the head (with the instance's headers) and any body bytes already received.
    func sendRequest() {
        guard let connection, let backend = ex.backend else { return }
        phase = .forwarding
        upstreamHead.moveWriterIndex(to: ex.headTailMark)
        HeadWriter.finishRequestHead(into: &upstreamHead, backend: backend)

        // Body bytes already here go with the head. Nothing is consumed until the write went
        // out, so a retry after a reset can send them again.
        var framer = ex.requestFramer
        var bodyCount = 0
        var complete = ex.requestComplete
        var invalid: BodyError?
        if !complete && pending.readableBytes > 0 {
            let source = pending
            switch source.withUnsafeReadableBytes({ framer.advance($0, from: 0, to: $0.count) }) {
            case .needMore: bodyCount = source.readableBytes
            case .complete(let end): bodyCount = end; complete = true
            case .invalid(let error): invalid = error
            }
        }
        if let invalid {
            self.connection = nil
            connection.owner = nil
            if !loop.pool.put(connection, now: loop.now) { connection.close() }
            respond(.badRequest("Invalid request body framing: \(invalid)."), close: true)
            return
        }
        var bodySlice: ByteBuffer?
        if bodyCount > 0 {
            if bodyCount <= Self.coalesceBytes {
                _ = pending.withUnsafeReadableBytes { upstreamHead.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<bodyCount])) }
            } else {
                bodySlice = pending.getSlice(at: pending.readerIndex, length: bodyCount)
            }
        }

        let attempt = generation
        ex.flushingFirstWrite = true
        connection.write(upstreamHead)
        if let bodySlice { connection.write(bodySlice) }
        connection.flush()
        ex.flushingFirstWrite = false
        guard attempt == generation, self.connection === connection else { return }

        ex.requestBytesWritten = true
        ex.requestFramer = framer
        ex.requestComplete = complete
        if bodyCount > 0 {
            pending.moveReaderIndex(forwardBy: bodyCount)
            ex.bytesReceived += Int64(bodyCount)
        }
        deadline = loop.now + loop.settings.backendResponseTimeout
        resumeClientReading()
    }

    /// Streams request body bytes read after the head.
    func forwardRequestBody(_ buffer: ByteBuffer) {
        guard let connection else {
            var rest = buffer
            pending.writeBuffer(&rest)
            return
        }
        let advance = buffer.withUnsafeReadableBytes { ex.requestFramer.advance($0, from: 0, to: $0.count) }
        switch advance {
        case .needMore:
            ex.bytesReceived += Int64(buffer.readableBytes)
            connection.write(buffer)
        case .complete(let end):
            ex.bytesReceived += Int64(end)
            if end == buffer.readableBytes {
                connection.write(buffer)
            } else if let body = buffer.getSlice(at: buffer.readerIndex, length: end),
                      var rest = buffer.getSlice(at: buffer.readerIndex + end, length: buffer.readableBytes - end) {
                connection.write(body)
                pending.writeBuffer(&rest)
            }
            ex.requestComplete = true
        case .invalid(let error):
            // The body cannot be delimited any more: nothing on either connection can be trusted.
            self.connection = nil
            connection.close()
            if ex.responseHeadSent {
                recordRequest()
                forceClose()
            } else {
                respond(.badRequest("Invalid request body framing: \(error)."), close: true)
            }
            return
        }
        let attempt = generation
        connection.flush()
        guard attempt == generation else { return }
        deadline = loop.now + loop.settings.backendResponseTimeout
    }

    // MARK: Failures and retries

    /// Applies `RetryPolicy` to a backend failure: bench, retry on another instance, or give up.
    func backendFailed(_ failure: BackendFailure) {
        guard let backend = ex.backend else { return }
        loop.metrics.record(failure: failure)
        if let connection {
            self.connection = nil
            connection.close()
        }
        let decision = loop.settings.retry.decide(failure, attempt: ex.attempt, replayable: ex.replayable)
        loop.logger.debug("backend failure", metadata: [
            "backend": .string(backend.addressText), "app.guid": .string(backend.appGUID),
            "instance.index": .stringConvertible(backend.index), "attempt": .stringConvertible(ex.attempt),
            "error": .string(failure.description),
        ])
        switch decision {
        case .retry(let bench, let fresh, let exclude):
            if bench { self.bench(backend, failure) }
            if fresh {
                loop.pool.closeIdle(to: backend)
                ex.forceFresh = true
            }
            if exclude {
                ex.tried.insert(backend.id)
                guard !ex.targeted, let route = ex.route,
                      let next = loop.settings.balancer.pick(route, now: loop.now, excluding: ex.tried)
                else {
                    failRequest()
                    return
                }
                release()
                assign(next)
            }
            startAttempt()
        case .fail(let bench):
            if bench { self.bench(backend, failure) }
            failRequest()
        }
    }

    private func bench(_ backend: Backend, _ failure: BackendFailure) {
        backend.bench(until: loop.now + loop.settings.retry.benchNanoseconds)
        loop.metrics.benched += 1
        loop.logger.warning("backend benched", metadata: [
            "backend": .string(backend.addressText), "app.guid": .string(backend.appGUID),
            "instance.index": .stringConvertible(backend.index), "error": .string(failure.description),
        ])
    }

    /// No (more) attempts: 502 if the client saw nothing of an answer yet, else cut.
    private func failRequest() {
        if !ex.responseHeadSent {
            respond(.endpointFailure, close: !ex.requestComplete || ex.closeAfter)
        } else {
            recordRequest()
            forceClose()
        }
    }
}
