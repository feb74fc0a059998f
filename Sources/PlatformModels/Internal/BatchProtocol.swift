/// How the controller's internal API judges batches (alerts, log lines, instance events, the
/// instances of a heartbeat, health actions): item by item.
///
/// An item the controller cannot use (a bad GUID, an index out of range, a field of the wrong
/// type, a missing alert name) is refused alone and named in the answer's `rejected`; the
/// other items are stored. Free text in an item (log messages, reasons, alert labels and
/// annotations) is never a reason to refuse it: the controller cleans it (``UntrustedText``).
/// Only a problem with the request as a whole (not JSON, too many items, an unknown agent, a
/// lapsed lease) refuses all of it.
public enum BatchProtocol {}

/// One refused item of a batch.
public struct BatchRejection: Codable, Sendable, Equatable {
    /// Its position in the batch (from 0).
    public var index: Int
    /// What is wrong with it, naming the field (`lines[3].app_guid must be a GUID`).
    public var reason: String

    public init(index: Int, reason: String) {
        self.index = index
        self.reason = reason
    }
}

/// The answer (200) to `POST /internal/v1/logs` and `POST /internal/v1/agents/:id/events`.
public struct BatchAnswer: Codable, Sendable, Equatable {
    /// Items taken (log lines of apps that no longer exist count as taken, and are dropped).
    public var accepted: Int
    /// Items refused, in batch order.
    public var rejected: [BatchRejection]

    public init(accepted: Int, rejected: [BatchRejection]) {
        self.accepted = accepted
        self.rejected = rejected
    }
}
