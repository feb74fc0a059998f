import NIOCore

/// What reading an answer head led to.
enum ResponseOutcome {
    /// More bytes needed; `consumed` bytes (interim answers already passed on) are done with.
    case incomplete(consumed: Int, resume: Int)
    /// The final head is in `downstream`; its body starts at `headEnd`.
    case final(headEnd: Int)
    /// `101 Switching Protocols` is in `downstream`; tunnel bytes start at `headEnd`.
    case upgraded(headEnd: Int)
    case invalid(String)
}

extension ClientHandler {
    // MARK: Step 6: the answer back to the client

    /// Bytes from the backend connection of the current exchange.
    func backendRead(_ buffer: ByteBuffer) {
        switch phase {
        case .forwarding:
            ex.responseStarted = true
            deadline = loop.now + loop.settings.backendResponseTimeout
            if ex.responseHeadDone {
                forwardResponseBody(buffer, from: 0, head: false)
            } else if responsePending.readableBytes == 0 {
                readResponseHead(from: buffer, buffered: false)
            } else {
                var rest = buffer
                responsePending.writeBuffer(&rest)
                readResponseHead(from: responsePending, buffered: true)
            }
        case .tunnel:
            ex.bytesSent += Int64(buffer.readableBytes)
            clientWrite(buffer)
            clientFlush()
        default:
            break
        }
    }

    private func readResponseHead(from source: ByteBuffer, buffered: Bool) {
        let attempt = generation
        let outcome = source.withUnsafeReadableBytes { parseResponse($0) }
        guard attempt == generation else { return }
        switch outcome {
        case .incomplete(let consumed, let resume):
            if buffered {
                responsePending.moveReaderIndex(forwardBy: consumed)
            } else if var rest = source.getSlice(at: source.readerIndex + consumed, length: source.readableBytes - consumed) {
                responsePending.writeBuffer(&rest)
            }
            responseScanResume = resume - consumed
        case .final(let headEnd):
            ex.responseHeadDone = true
            ex.responseHeadSent = true
            if buffered { responsePending.moveReaderIndex(to: responsePending.writerIndex) }
            forwardResponseBody(source, from: headEnd, head: true)
        case .upgraded(let headEnd):
            if buffered { responsePending.moveReaderIndex(to: responsePending.writerIndex) }
            startTunnel(source, from: headEnd)
        case .invalid(let reason):
            backendFailed(.invalidResponse(reason))
        }
    }

    /// Parses interim answers (passed on at once) and the final head (rewritten into
    /// `downstream`); sets the answer's framing and whether either connection closes after.
    private func parseResponse(_ p: UnsafeRawBufferPointer) -> ResponseOutcome {
        let maxHead = loop.settings.maxHeaderBytes
        var offset = 0
        var resume = responseScanResume
        while true {
            let q = UnsafeRawBufferPointer(rebasing: p[offset..<p.count])
            let end: Int
            switch HeadParser.scan(q, from: resume) {
            case .incomplete(let at):
                if q.count > maxHead { return .invalid("answer head larger than \(maxHead) bytes") }
                return .incomplete(consumed: offset, resume: offset + at)
            case .complete(let headEnd):
                end = headEnd
            }
            if end > maxHead { return .invalid("answer head larger than \(maxHead) bytes") }
            let status: StatusLine
            let facts: MessageFacts
            do throws(HeadError) {
                let (line, fieldsStart) = try HeadParser.parseStatusLine(q, headEnd: end)
                status = line
                try HeadParser.parseFields(q, from: fieldsStart, headEnd: end, maxFields: loop.settings.maxHeaderFields, into: &fields)
            } catch {
                return .invalid(error.description)
            }
            do throws(FramingError) {
                facts = try MessageFacts.read(q, fields: fields, minorVersion: status.minorVersion, request: false, listed: &listed)
            } catch {
                return .invalid(error.description)
            }

            if status.status < 200 {
                if status.status == 101 {
                    guard ex.upgrade else { return .invalid("101 Switching Protocols to a request that asked for no upgrade") }
                    downstream.clear()
                    HeadWriter.writeResponseHead(into: &downstream, q, status: status, fields: fields, facts: facts,
                                                 listed: listed, close: false, dechunk: false, sticky: nil)
                    return .upgraded(headEnd: offset + end)
                }
                // Interim answer (100 Continue, 103 Early Hints): HTTP/1.0 clients know none.
                if ex.clientMinorVersion == 1 {
                    downstream.clear()
                    HeadWriter.writeResponseHead(into: &downstream, q, status: status, fields: fields, facts: facts,
                                                 listed: listed, close: false, dechunk: false, sticky: nil)
                    clientWrite(downstream)
                }
                offset += end
                resume = 0
                continue
            }

            ex.status = status.status
            if ex.isHead || status.status == 204 || status.status == 304 {
                ex.responseFramer = .none
            } else if facts.chunked {
                ex.responseFramer = .chunked
                // HTTP/1.0 clients cannot read chunked framing: payload only, ended by close.
                ex.dechunk = ex.clientMinorVersion == 0
            } else if facts.contentLength >= 0 {
                ex.responseFramer = .length(facts.contentLength)
            } else {
                ex.responseFramer = .untilClose
            }
            let untilClose = ex.responseFramer.isUntilClose
            ex.backendReusable = status.minorVersion == 1 && !facts.close && !untilClose
            if untilClose || ex.dechunk || loop.draining { ex.closeAfter = true }
            var sticky: StickyInstruction?
            if (facts.setCookiePresent || ex.stickyRepin), let backend = ex.backend {
                sticky = StickyInstruction(instanceGUID: backend.instanceGUIDBytes, repin: ex.stickyRepin, secure: https)
            }
            downstream.clear()
            HeadWriter.writeResponseHead(into: &downstream, q, status: status, fields: fields, facts: facts, listed: listed,
                                         close: ex.closeAfter, dechunk: ex.dechunk, sticky: sticky)
            return .final(headEnd: offset + end)
        }
    }

    /// Sends the answer's body bytes in `source` from `offset` on (after the head in
    /// `downstream` when `head`), untouched unless de-chunking.
    func forwardResponseBody(_ source: ByteBuffer, from offset: Int, head: Bool) {
        var end = source.readableBytes
        var complete = false
        var invalid: BodyError?
        if ex.dechunk {
            if head { clientWrite(downstream) }
            source.withUnsafeReadableBytes { p in
                var i = offset
                scanning: while true {
                    switch ex.responseFramer.step(p, from: i, to: p.count) {
                    case .data(let start, let stop):
                        if let slice = source.getSlice(at: source.readerIndex + start, length: stop - start) { clientWrite(slice) }
                        ex.bytesSent += Int64(stop - start)
                        i = stop
                    case .needMore:
                        break scanning
                    case .complete(let stop):
                        end = stop
                        complete = true
                        break scanning
                    case .invalid(let error):
                        invalid = error
                        break scanning
                    }
                }
            }
        } else {
            switch source.withUnsafeReadableBytes({ ex.responseFramer.advance($0, from: offset, to: $0.count) }) {
            case .needMore:
                break
            case .complete(let stop):
                end = stop
                complete = true
            case .invalid(let error):
                invalid = error
                end = offset
            }
            let count = end - offset
            if head {
                if count > 0 && count <= Self.coalesceBytes {
                    _ = source.withUnsafeReadableBytes { downstream.writeBytes(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
                    clientWrite(downstream)
                } else {
                    clientWrite(downstream)
                    if count > 0, let slice = source.getSlice(at: source.readerIndex + offset, length: count) { clientWrite(slice) }
                }
            } else if count > 0 {
                if count == source.readableBytes {
                    clientWrite(source)
                } else if let slice = source.getSlice(at: source.readerIndex + offset, length: count) {
                    clientWrite(slice)
                }
            }
            ex.bytesSent += Int64(count)
        }
        // Bytes after the end of the answer: the backend broke framing; never reuse it.
        if complete && end < source.readableBytes { ex.backendReusable = false }
        let attempt = generation
        clientFlush()
        guard attempt == generation else { return }
        if let invalid {
            backendFailed(.invalidResponse(invalid.description))
        } else if complete {
            finishExchange()
        }
    }

    /// The answer is complete: pool or close the backend connection, log, next request.
    func finishExchange() {
        if !ex.requestComplete {
            ex.backendReusable = false
            ex.closeAfter = true
        }
        if let connection {
            self.connection = nil
            connection.owner = nil
            if ex.backendReusable && connection.isOpen && loop.pool.put(connection, now: loop.now) {
                connection.reused = true
                connection.resumeReading()
            } else {
                connection.close()
            }
        }
        recordRequest()
        afterResponse()
    }

    // MARK: Step 7: upgrades

    /// After `101`: the head goes to the client and both connections become a byte tunnel.
    private func startTunnel(_ source: ByteBuffer, from headEnd: Int) {
        phase = .tunnel
        ex.status = 101
        ex.responseHeadDone = true
        ex.responseHeadSent = true
        loop.metrics.upgrades += 1
        deadline = 0
        let rest = source.readableBytes - headEnd
        if rest > 0 {
            _ = source.withUnsafeReadableBytes { downstream.writeBytes(UnsafeRawBufferPointer(rebasing: $0[headEnd..<$0.count])) }
            ex.bytesSent += Int64(rest)
        }
        clientWrite(downstream)
        let attempt = generation
        clientFlush()
        guard attempt == generation, let connection else { return }
        if pending.readableBytes > 0 {
            ex.bytesReceived += Int64(pending.readableBytes)
            connection.write(pending)
            pending.moveReaderIndex(to: pending.writerIndex)
            connection.flush()
            guard attempt == generation else { return }
        }
        resumeClientReading()
        connection.resumeReading()
    }

    // MARK: Backend connection closed

    /// The backend connection of the current exchange closed (EOF, reset, error).
    func backendClosed(_ closed: BackendHandler) {
        guard closed === connection else { return }
        connection = nil
        switch phase {
        case .forwarding:
            if ex.flushingFirstWrite || !ex.requestBytesWritten {
                backendFailed(.closedBeforeRequestWritten)
            } else if !ex.responseStarted {
                backendFailed(.closedBeforeResponse(reused: closed.reused))
            } else if !ex.responseHeadDone {
                backendFailed(.invalidResponse("connection closed inside the answer's head"))
            } else if ex.responseFramer.isUntilClose {
                ex.backendReusable = false
                finishExchange()
            } else {
                backendFailed(.closedDuringResponse)
            }
        case .tunnel:
            recordRequest()
            closeAfterFlush()
        default:
            break
        }
    }
}
