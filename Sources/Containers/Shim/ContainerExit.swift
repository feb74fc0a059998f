import Foundation

/// How a container's init process ended, as its shim saw it.
public enum ContainerExit: Sendable, Equatable {
    /// It exited with this code.
    case exited(Int32)
    /// It was killed by this signal (an OOM kill is signal 9).
    case signaled(Int32)

    /// The shell's convention: the exit code, or 128 + the signal.
    public var status: Int {
        switch self {
        case .exited(let code): Int(code)
        case .signaled(let signal): 128 + Int(signal)
        }
    }
}

/// The shim's `exit` file: how the container ended and when.
public struct ShimExitRecord: Sendable, Equatable {
    /// How it ended.
    public var exit: ContainerExit
    /// When the shim reaped the init process (whole seconds).
    public var timestamp: Date

    /// A record value.
    public init(exit: ContainerExit, timestamp: Date) {
        self.exit = exit
        self.timestamp = timestamp
    }

    /// Parses `exited <code> <unix-seconds>` or `signaled <signal> <unix-seconds>`; nil otherwise.
    public init?(line: String) {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 3, let value = Int32(fields[1]), value >= 0, let seconds = Int64(fields[2]) else { return nil }
        switch fields[0] {
        case "exited": exit = .exited(value)
        case "signaled": exit = .signaled(value)
        default: return nil
        }
        timestamp = Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}
