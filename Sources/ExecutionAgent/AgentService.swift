import Logging
import NIOPosix
import PlatformClient
import ServiceLifecycle

/// Runs an ``ExecutionAgent`` as a ServiceLifecycle service. Graceful shutdown stops the agent
/// but leaves its containers running: the next agent adopts them.
public struct AgentService: Service {
    public let agent: ExecutionAgent
    private let client: ComponentClient
    private let logger: Logger

    /// An agent for `config`, talking to the CC at `config.controllerURL`.
    public init(config: AgentConfig, threadPool: NIOThreadPool, logger: Logger) throws {
        let client = ComponentClient(api: config.controllerURL, credential: config.internalCredential, component: "dea")
        self.client = client
        self.logger = logger
        self.agent = try ExecutionAgent(config: config, client: client, threadPool: threadPool, logger: logger)
    }

    public func run() async throws {
        logger.info("execution agent starting", metadata: ["agent": "\(agent.config.agentID)", "controller": "\(agent.config.controllerURL)"])
        try await cancelWhenGracefulShutdown {
            try await agent.run()
        }
        try? await client.shutdown()
    }
}
