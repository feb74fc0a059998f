#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The one error type of the Containers module.
///
/// `kind` says what class of failure it is (callers branch on it); `message` is our own words;
/// `exitStatus` and `stderrTail` carry what a failed program (runc) said; `errno` what a failed
/// system call said. `description` reads `kind: message (exit N) (errno ...) stderr: ...`.
public struct ContainerError: Error, CustomStringConvertible, Sendable {
    /// What class of failure this is. A closed set, so callers can switch over it exhaustively.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A caller passed something unusable (an invalid container id, a path with a comma, ...).
        case invalidArgument
        /// A program could not be found or started.
        case launchFailed
        /// A program ran and exited non-zero (or died of a signal).
        case commandFailed
        /// A program did not finish within its time limit and was killed.
        case timeout
        /// A system call (mount, umount2, open, ...) failed; `errno` holds the code.
        case systemCall
        /// Reading or writing a file failed.
        case io
        /// JSON from runc or a bundle could not be decoded or encoded.
        case decoding
        /// A container, bundle or cgroup that should exist does not.
        case notFound
        /// Another process owns what was asked for (a state directory's lock, see ``DirectoryLock``).
        case inUse
        /// Anything else.
        case other
    }

    /// What class of failure this is.
    public var kind: Kind
    /// What went wrong, with the library's or program's own words where it gave any.
    public var message: String
    /// Exit status of the failed program; 128 + signal number when it died of a signal.
    public var exitStatus: Int32?
    /// The last ~2 KB of the failed program's standard error (or runc's log).
    public var stderrTail: String?
    /// The errno of a failed system call.
    public var errno: Int32?
    /// The underlying error, when this one wraps another.
    public var cause: (any Error & Sendable)?

    /// A generic error with only a message (kind `.other`).
    public init(_ message: String) {
        self.init(.other, message)
    }

    /// An error of the given kind with optional program or system-call details.
    public init(
        _ kind: Kind,
        _ message: String,
        exitStatus: Int32? = nil,
        stderrTail: String? = nil,
        errno: Int32? = nil,
        cause: (any Error & Sendable)? = nil
    ) {
        self.kind = kind
        self.message = message
        self.exitStatus = exitStatus
        self.stderrTail = stderrTail
        self.errno = errno
        self.cause = cause
    }

    public var description: String {
        var text = "\(kind.rawValue): \(message)"
        if let exitStatus { text += " (exit \(exitStatus))" }
        if let errno { text += " (errno \(errno): \(Self.errnoText(errno)))" }
        if let tail = stderrTail?.trimmingCharacters(in: .whitespacesAndNewlines), !tail.isEmpty {
            text += " stderr: \(tail)"
        }
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}

extension ContainerError {
    /// The C library's text for an errno value (`strerror`).
    public static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }

    /// A `.systemCall` error for the current `errno`, naming the call that failed.
    static func systemCall(_ call: String, _ detail: String, errno code: Int32) -> ContainerError {
        ContainerError(.systemCall, "\(call) \(detail): \(errnoText(code))", errno: code)
    }
}
