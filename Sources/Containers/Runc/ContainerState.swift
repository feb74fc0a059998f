import Foundation

/// What `runc state` (and each entry of `runc list`) reports about a container.
public struct ContainerState: Codable, Sendable, Equatable {
    /// The container's lifecycle status.
    public enum Status: String, Codable, Sendable {
        case creating, created, running, stopped, paused
    }

    /// Runtime-spec version of the container.
    public var ociVersion: String
    /// Container id.
    public var id: String
    /// Host pid of the container's init process (0 once stopped).
    public var pid: Int32
    /// Lifecycle status.
    public var status: Status
    /// Bundle directory.
    public var bundle: String
    /// Root filesystem path.
    public var rootfs: String?
    /// Creation time (RFC 3339, as runc prints it).
    public var created: String?
    /// Owner (runc list only).
    public var owner: String?
    /// Annotations from config.json.
    public var annotations: [String: String]?

    /// A state value (for tests and fakes).
    public init(
        ociVersion: String = ociRuntimeSpecVersion, id: String, pid: Int32, status: Status, bundle: String,
        rootfs: String? = nil, created: String? = nil, owner: String? = nil, annotations: [String: String]? = nil
    ) {
        self.ociVersion = ociVersion
        self.id = id
        self.pid = pid
        self.status = status
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.owner = owner
        self.annotations = annotations
    }
}

/// Where a container's standard output and error go: files, appended to, that outlive the agent.
public struct ContainerStdio: Sendable, Equatable {
    /// Standard output file (created 0640 if missing).
    public var stdout: String
    /// Standard error file (created 0640 if missing); runc's own errors at create time land here too.
    public var stderr: String

    /// Both streams to files.
    public init(stdout: String, stderr: String) {
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// What a `runc exec` left: the program's exit status and its captured output.
public struct ExecResult: Sendable, Equatable {
    /// Exit status, 128 + signal when killed.
    public var status: Int32
    /// Captured standard output.
    public var stdout: Data
    /// Captured standard error.
    public var stderr: Data

    /// Standard output as UTF-8 text.
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard error as UTF-8 text.
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// A result value.
    public init(status: Int32, stdout: Data, stderr: Data) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}
