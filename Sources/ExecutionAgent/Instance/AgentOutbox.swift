import Foundation
import PlatformModels
import Synchronization

/// What instances tell the rest of the world, collected without going through the agent's
/// actor: instance events for the controller, the agent's own `CELL` log lines, a "report
/// soon" flag for the heartbeat loop, and the waiters of tests and benchmarks.
///
/// Instances write here from their own actors; the agent's loops drain it. Both queues are
/// bounded: while the controller is unreachable the oldest entries go first.
final class AgentOutbox: Sendable {
    private struct State {
        var events: [InstanceEvent] = []
        var cellLines: [LogLine] = []
        var droppedCellLines = 0
        var kicked = false
        var expectations: [UInt64: Expectation] = [:]
        var nextID: UInt64 = 0
        var observer: (@Sendable ([LogLine]) -> Void)?
    }

    private struct Expectation {
        var predicate: @Sendable (InstanceEvent) -> Bool
        var continuation: CheckedContinuation<InstanceEvent, any Error>?
        var matched: InstanceEvent?
    }

    private let state = Mutex(State())
    /// Whether events are queued for a controller (an agent without one only tells waiters).
    let queuesEvents: Bool
    let maxEvents: Int
    let maxCellLines: Int

    init(queuesEvents: Bool, maxEvents: Int = 1000, maxCellLines: Int) {
        self.queuesEvents = queuesEvents
        self.maxEvents = maxEvents
        self.maxCellLines = max(1, maxCellLines)
    }

    // MARK: Events

    /// Queues an event for the controller and hands it to every waiter that wants it.
    func emit(_ event: InstanceEvent) {
        let resumed: [CheckedContinuation<InstanceEvent, any Error>] = state.withLock { state in
            if queuesEvents {
                if state.events.count >= maxEvents { state.events.removeFirst() }
                state.events.append(event)
            }
            state.kicked = true
            var resume: [CheckedContinuation<InstanceEvent, any Error>] = []
            for (id, expectation) in state.expectations where expectation.matched == nil && expectation.predicate(event) {
                if let continuation = expectation.continuation {
                    resume.append(continuation)
                    state.expectations[id] = nil
                } else {
                    state.expectations[id]?.matched = event
                }
            }
            return resume
        }
        for continuation in resumed { continuation.resume(returning: event) }
    }

    /// Up to `limit` of the oldest queued events.
    func pendingEvents(limit: Int) -> [InstanceEvent] {
        state.withLock { Array($0.events.prefix(limit)) }
    }

    /// Drops the `count` oldest events once the controller has them.
    func removeEvents(_ count: Int) {
        state.withLock { $0.events.removeFirst(min(count, $0.events.count)) }
    }

    /// Registers interest in the next event matching `predicate` now, so an event that
    /// happens before the caller starts waiting is not missed.
    func expect(_ predicate: @escaping @Sendable (InstanceEvent) -> Bool) -> EventExpectation {
        let id = state.withLock { state in
            state.nextID += 1
            state.expectations[state.nextID] = Expectation(predicate: predicate)
            return state.nextID
        }
        return EventExpectation(id: id, outbox: self)
    }

    fileprivate func wait(_ id: UInt64, timeout: Duration) async throws -> InstanceEvent {
        let expiry = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.expire(id, AgentError("no matching instance event within \(timeout)"))
        }
        defer { expiry.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let outcome: Result<InstanceEvent, any Error>? = state.withLock { state in
                    guard let expectation = state.expectations[id] else {
                        return .failure(AgentError("no matching instance event within \(timeout)"))
                    }
                    if let matched = expectation.matched {
                        state.expectations[id] = nil
                        return .success(matched)
                    }
                    state.expectations[id]?.continuation = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            expire(id, CancellationError())
        }
    }

    /// Ends a wait with `error` (its deadline passed or its caller was cancelled).
    fileprivate func expire(_ id: UInt64, _ error: any Error) {
        let continuation = state.withLock { state -> CheckedContinuation<InstanceEvent, any Error>? in
            guard let expectation = state.expectations[id], expectation.matched == nil else { return nil }
            state.expectations[id] = nil
            return expectation.continuation
        }
        continuation?.resume(throwing: error)
    }

    // MARK: Agent log lines and reporting

    /// A line from the agent itself (`CELL`) in an app's log; it may quote an app's or runc's
    /// words, so it is cleaned like app output.
    func cell(_ assignment: InstanceAssignment, _ message: String) {
        let line = LogLine(appGUID: assignment.appGUID, timestamp: Int64(Date().timeIntervalSince1970 * 1e9),
                           sourceType: "CELL", sourceInstance: String(assignment.index), messageType: .out,
                           message: UntrustedText.clean(message, as: .logMessage))
        state.withLock { state in
            if state.cellLines.count >= maxCellLines {
                state.cellLines.removeFirst()
                state.droppedCellLines += 1
            }
            state.cellLines.append(line)
        }
    }

    /// The agent's lines not yet shipped, oldest first.
    func pendingCellLines() -> [LogLine] { state.withLock { $0.cellLines } }

    /// Drops the `count` oldest agent lines once they were shipped.
    func removeCellLines(_ count: Int) {
        state.withLock { $0.cellLines.removeFirst(min(count, $0.cellLines.count)) }
    }

    /// Asks the heartbeat loop to report before its interval ends.
    func kick() { state.withLock { $0.kicked = true } }

    /// Whether a kick came since the last call (and clears it).
    func takeKick() -> Bool {
        state.withLock { state in
            defer { state.kicked = false }
            return state.kicked
        }
    }

    /// Whether a kick is pending (without clearing it).
    var isKicked: Bool { state.withLock { $0.kicked } }

    /// Receives every batch of shipped log lines.
    func observe(_ observer: @escaping @Sendable ([LogLine]) -> Void) {
        state.withLock { $0.observer = observer }
    }

    func notifyObserver(_ lines: [LogLine]) {
        let observer = state.withLock { $0.observer }
        observer?(lines)
    }
}

/// A registered wait for one instance event (``AgentOutbox/expect(_:)``).
public struct EventExpectation: Sendable {
    fileprivate let id: UInt64
    fileprivate let outbox: AgentOutbox

    /// The matching event, as soon as it happened (or already had); throws once `timeout`
    /// passes without one, or when the caller is cancelled.
    public func wait(timeout: Duration) async throws -> InstanceEvent {
        try await outbox.wait(id, timeout: timeout)
    }
}
