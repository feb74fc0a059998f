import Containers
import Logging
import NIOPosix
import PlatformClient
import ServiceLifecycle

/// Runs a ``Stager`` as a ServiceLifecycle service. Graceful shutdown cancels the builds in
/// progress (their containers are removed); the CC fails them when the stager stops polling.
///
/// The service owns the stager's state directory (``DirectoryLock``) from its init until its run
/// ends: a second stager on the same directory fails to start, naming this one's pid.
public struct StagerService: Service {
    public let stager: Stager
    private let lock: DirectoryLock
    private let client: ComponentClient
    private let logger: Logger

    /// A stager for `config`, talking to the CC at `config.controllerURL`. Throws `.inUse`
    /// when another process owns `config.stateDirectory`.
    public init(config: StagerConfig, threadPool: NIOThreadPool, logger: Logger) throws {
        // Before the stager's init creates anything in the directory, and before its start
        // removes the other owner's builds as leftovers.
        self.lock = try DirectoryLock(directory: config.stateDirectory)
        let client = ComponentClient(api: config.controllerURL, credential: config.internalCredential, component: "stager")
        self.client = client
        self.logger = logger
        self.stager = try Stager(config: config, client: client, threadPool: threadPool, logger: logger)
    }

    public func run() async throws {
        defer { lock.release() }
        logger.info("stager starting", metadata: ["stager": "\(stager.config.stagerID)", "controller": "\(stager.config.controllerURL)"])
        try await cancelWhenGracefulShutdown {
            try await stager.run()
        }
        try? await client.shutdown()
    }
}
