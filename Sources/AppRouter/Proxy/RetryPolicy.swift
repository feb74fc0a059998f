/// What went wrong with a backend while serving one request.
enum BackendFailure: Equatable, Sendable, CustomStringConvertible {
    /// The dial failed: refused, timed out (5 s) or unreachable.
    case connectFailed(String)
    /// The connection was reset or closed before the request's first bytes were written.
    case closedBeforeRequestWritten
    /// Closed after the request was written but before any byte of an answer came back.
    /// `reused` tells whether the connection came from the keep-alive pool.
    case closedBeforeResponse(reused: Bool)
    /// No answer within the backend response timeout.
    case responseTimeout
    /// The answer was not acceptable HTTP (framing, CRLF injection, oversized head).
    case invalidResponse(String)
    /// The connection broke while the answer streamed.
    case closedDuringResponse

    var description: String {
        switch self {
        case .connectFailed(let why): return "connect failed: \(why)"
        case .closedBeforeRequestWritten: return "connection reset before the request was written"
        case .closedBeforeResponse(let reused): return reused ? "pooled connection closed before an answer" : "connection closed before an answer"
        case .responseTimeout: return "no answer within the response timeout"
        case .invalidResponse(let why): return "invalid answer: \(why)"
        case .closedDuringResponse: return "connection closed during the answer"
        }
    }

    /// Label of the `router_backend_failures_total` metric.
    var metricLabel: String {
        switch self {
        case .connectFailed: return "connect"
        case .closedBeforeRequestWritten: return "reset_before_write"
        case .closedBeforeResponse: return "closed_before_response"
        case .responseTimeout: return "response_timeout"
        case .invalidResponse: return "invalid_response"
        case .closedDuringResponse: return "closed_during_response"
        }
    }
}

/// The retry rules of CONTRACTS.md as a pure state machine: a connect failure (refused, dial
/// timeout, reset before the request was written) benches the instance and tries another, up
/// to `maxAttempts` attempts in all; once request bytes reached a backend nothing is retried.
///
/// One exception, the one every keep-alive proxy makes: a connection taken from the idle pool
/// that turns out to have been closed by the backend (it answers the request with EOF and not
/// one byte) is retried on a fresh connection when the request has no body and a method that
/// is safe to repeat (GET, HEAD, OPTIONS, TRACE). The instance is not benched for it: the
/// backend only closed an idle connection, which it may do at any time.
struct RetryPolicy: Sendable {
    var maxAttempts = 3
    var benchNanoseconds: Int64 = 30_000_000_000

    /// What to do after a failure.
    enum Decision: Equatable, Sendable {
        /// Try again: bench the instance first when `bench`; `freshConnection` forbids the pool
        /// (and drops the instance's idle connections) for the next attempt; `excludeInstance`
        /// keeps the failed instance out of the next pick.
        case retry(bench: Bool, freshConnection: Bool, excludeInstance: Bool)
        /// Give up: answer 502 if the client has not seen an answer yet, else cut the connection.
        case fail(bench: Bool)
    }

    /// The decision for `failure` on attempt number `attempt` (1-based).
    func decide(_ failure: BackendFailure, attempt: Int, replayable: Bool) -> Decision {
        let more = attempt < maxAttempts
        switch failure {
        case .connectFailed, .closedBeforeRequestWritten:
            return more ? .retry(bench: true, freshConnection: false, excludeInstance: true) : .fail(bench: true)
        case .closedBeforeResponse(reused: true) where replayable:
            return more ? .retry(bench: false, freshConnection: true, excludeInstance: false) : .fail(bench: false)
        case .closedBeforeResponse, .responseTimeout, .invalidResponse, .closedDuringResponse:
            return .fail(bench: false)
        }
    }

    /// Safe methods (RFC 9110 9.2.1): the only ones the stale-connection exception applies to,
    /// and only without a body.
    static func isReplayable(method p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, hasBody: Bool) -> Bool {
        guard !hasBody else { return false }
        let n = end - start
        func eq(_ s: StaticString) -> Bool {
            guard n == s.utf8CodeUnitCount else { return false }
            for i in 0..<n where p[start + i] != s.utf8Start[i] { return false }
            return true
        }
        return eq("GET") || eq("HEAD") || eq("OPTIONS") || eq("TRACE")
    }
}
