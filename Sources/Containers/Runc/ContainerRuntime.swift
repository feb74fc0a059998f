/// The container operations an agent needs, so its logic can be tested with a fake instead of
/// runc. ``Runc`` is the real implementation.
public protocol ContainerRuntime: Sendable {
    /// Sets a container up without starting its process.
    func create(id: String, bundle: String, pidFile: String?, stdio: ContainerStdio) async throws
    /// Starts a created container's process.
    func start(id: String) async throws
    /// Creates and starts a container, returning once its process runs.
    func runDetached(id: String, bundle: String, pidFile: String?, stdio: ContainerStdio) async throws
    /// The container's status, init pid and bundle.
    func state(id: String) async throws -> ContainerState
    /// Sends a signal to the init process, or to all processes.
    func kill(id: String, signal: Int32, all: Bool) async throws
    /// Removes a container (a running one only with `force`).
    func delete(id: String, force: Bool) async throws
    /// All containers this runtime knows.
    func list() async throws -> [ContainerState]
    /// Runs a program inside a running container and captures its output.
    func exec(id: String, args: [String], env: [String], cwd: String?, user: User?, timeout: Duration) async throws -> ExecResult
}

extension Runc: ContainerRuntime {}
