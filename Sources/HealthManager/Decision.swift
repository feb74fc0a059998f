/// Why an instance should stop.
public enum StopReason: String, Sendable, Equatable {
    /// Its index is at or above the desired instance count.
    case scaledDown = "scaled down"
    /// Its app is stopped.
    case appStopped = "app stopped"
    /// Its process is no longer desired at all.
    case notDesired = "not desired"
    /// Another instance with the same index is kept.
    case duplicate
    /// It ran on a draining agent and its replacement is running.
    case evacuated
}

/// One thing the health manager wants done.
public enum Decision: Sendable, Equatable, CustomStringConvertible {
    /// Start a new instance of `process` with `index` on `agent`.
    case place(process: String, index: Int, agent: String)
    /// Nowhere fits: the index stays without an instance.
    case unplaced(process: String, index: Int, reason: String)
    /// Restart a crashed instance where it is.
    case restart(instance: String, process: String, index: Int, agent: String, crashCount: Int)
    /// It stayed up long enough: its crash count goes back to 0.
    case resetCrashCount(instance: String, process: String, index: Int)
    case stop(instance: String, process: String, index: Int, agent: String, reason: StopReason)

    /// True for decisions that end or interrupt something running.
    public var isDisruptive: Bool {
        switch self {
        case .stop, .restart: true
        case .place, .unplaced, .resetCrashCount: false
        }
    }

    public var description: String {
        switch self {
        case let .place(process, index, agent): "place \(process)/\(index) on \(agent)"
        case let .unplaced(process, index, reason): "unplaced \(process)/\(index): \(reason)"
        case let .restart(instance, process, index, agent, count): "restart \(process)/\(index) \(instance) on \(agent) (crash \(count))"
        case let .resetCrashCount(instance, process, index): "reset crash count \(process)/\(index) \(instance)"
        case let .stop(instance, process, index, agent, reason): "stop \(process)/\(index) \(instance) on \(agent): \(reason.rawValue)"
        }
    }
}

/// The outcome of one decision pass.
public struct Plan: Sendable, Equatable {
    public var decisions: [Decision]
    /// The earliest time a crashed instance that must wait becomes due for restart (Unix seconds).
    public var nextRestartAt: Double?
    /// False when desired state was stale or unknown, so nothing was stopped or restarted.
    public var desiredWasFresh: Bool

    public init(decisions: [Decision], nextRestartAt: Double? = nil, desiredWasFresh: Bool = true) {
        self.decisions = decisions
        self.nextRestartAt = nextRestartAt
        self.desiredWasFresh = desiredWasFresh
    }
}
