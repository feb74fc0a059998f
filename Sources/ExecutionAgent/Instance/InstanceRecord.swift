import Containers
import Foundation
import PlatformModels

/// What the agent knows of one instance, kept on disk (`instances/<guid>/record.json`) so a
/// restarted agent can adopt the container instead of killing it.
struct InstanceRecord: Codable, Sendable {
    var assignment: InstanceAssignment
    var containerID: String
    var attachment: NetworkAttachment?
    var dropletLayer: String?
    var state: InstanceState
    /// When the instance entered `state` (Unix seconds).
    var since: Double
    /// When the container's process started (Unix seconds).
    var startedAt: Double?
    var crashCount: Int
    var details: String?
    var exitStatus: Int?
    /// How far the instance's log has been shipped.
    var logPosition: ShimLogPosition?
    /// Set once a stop was asked for: an exit after it is not a crash.
    var stopRequested: Bool

    var guid: String { assignment.instanceGUID }

    init(assignment: InstanceAssignment, now: Date) {
        self.assignment = assignment
        self.containerID = "cfl-" + assignment.instanceGUID.lowercased()
        self.state = .starting
        self.since = now.timeIntervalSince1970
        self.crashCount = 0
        self.stopRequested = false
    }

    /// `APP/PROC/WEB` for the web process, as CF names log sources.
    var logSourceType: String { "APP/PROC/" + assignment.processType.uppercased() }
}

/// Paths of one instance under the agent's state directory.
struct InstancePaths: Sendable {
    let base: String
    init(root: String, guid: String) { base = root + "/" + guid }
    var record: String { base + "/record.json" }
    var bundle: String { base + "/bundle" }
    var rootfs: String { base + "/rootfs" }
    var upper: String { base + "/upper" }
    var work: String { base + "/work" }
    var shim: String { base + "/shim" }
}
