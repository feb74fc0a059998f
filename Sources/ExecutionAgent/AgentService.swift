import Containers
import Logging
import NIOPosix
import PlatformClient
import ServiceLifecycle

/// Runs an ``ExecutionAgent`` as a ServiceLifecycle service. Graceful shutdown stops the agent
/// but leaves its containers running: the next agent adopts them.
///
/// The service owns the agent's state directory (``DirectoryLock``) from its init until its run
/// ends: a second agent on the same directory fails to start, naming this one's pid.
public struct AgentService: Service {
    public let agent: ExecutionAgent
    private let lock: DirectoryLock
    private let client: ComponentClient
    private let logger: Logger

    /// An agent for `config`, talking to the CC at `config.controllerURL`. Throws `.inUse`
    /// when another process owns `config.stateDirectory`.
    public init(config: AgentConfig, threadPool: NIOThreadPool, logger: Logger) throws {
        // Before the agent's init creates anything in the directory: the other owner's runc
        // state and instances are there.
        self.lock = try DirectoryLock(directory: config.stateDirectory)
        let client = ComponentClient(api: config.controllerURL, credential: config.internalCredential, component: "dea")
        self.client = client
        self.logger = logger
        self.agent = try ExecutionAgent(config: config, client: client, threadPool: threadPool, logger: logger)
    }

    public func run() async throws {
        defer { lock.release() }
        logger.info("execution agent starting", metadata: ["agent": "\(agent.config.agentID)", "controller": "\(agent.config.controllerURL)"])
        try await cancelWhenGracefulShutdown {
            try await agent.run()
        }
        try? await client.shutdown()
    }
}

extension AgentService {
    /// Runs `body` as the owner of `config.stateDirectory`, for one-shot work on the agent's state
    /// (`cf-like-server dea-cleanup`): throws `.inUse` naming the pid while an agent runs on it.
    public static func withStateDirectoryLocked<Result>(
        _ config: AgentConfig, _ body: () async throws -> Result
    ) async throws -> Result {
        let lock = try DirectoryLock(directory: config.stateDirectory)
        defer { lock.release() }
        return try await body()
    }
}
