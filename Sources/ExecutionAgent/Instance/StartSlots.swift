import Synchronization

/// At most `count` instance starts at a time. A wait for a slot ends when one is free, when
/// its deadline passes, or when its caller is cancelled, and ``withSlot(timeout:_:)`` gives
/// the slot back on every path, so a failed or hung start can never keep one.
final class StartSlots: Sendable {
    private struct State {
        var free: Int
        var nextID: UInt64 = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        /// Waits that ended (deadline, cancellation) before they were registered.
        var ended: [UInt64: any Error] = [:]
    }
    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(free: max(1, count))) }

    /// Free slots now (tests).
    var free: Int { state.withLock { $0.free } }

    /// Runs `body` holding a slot; throws if none was free within `timeout`.
    func withSlot<T: Sendable>(timeout: Duration, _ body: @Sendable () async throws -> T) async throws -> T {
        try await acquire(timeout: timeout)
        do {
            let result = try await body()
            release()
            return result
        } catch {
            release()
            throw error
        }
    }

    private func acquire(timeout: Duration) async throws {
        let id: UInt64? = state.withLock { state in
            if state.free > 0, state.waiters.isEmpty {
                state.free -= 1
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        let expiry = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.abandon(id, AgentError("no start slot became free within \(timeout)"))
        }
        defer { expiry.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, any Error>? in
                    if let error = state.ended.removeValue(forKey: id) { return .failure(error) }
                    if state.free > 0, state.waiters.isEmpty {
                        state.free -= 1
                        return .success(())
                    }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            abandon(id, CancellationError())
        }
    }

    private func abandon(_ id: UInt64, _ error: any Error) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard let i = state.waiters.firstIndex(where: { $0.id == id }) else {
                state.ended[id] = error
                return nil
            }
            return state.waiters.remove(at: i).continuation
        }
        continuation?.resume(throwing: error)
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiters.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }
}
