import Logging
import NIOPosix
import PlatformClient
import ServiceLifecycle

/// Runs a ``Stager`` as a ServiceLifecycle service. Graceful shutdown cancels the builds in
/// progress (their containers are removed); the CC fails them when the stager stops polling.
public struct StagerService: Service {
    public let stager: Stager
    private let client: ComponentClient
    private let logger: Logger

    /// A stager for `config`, talking to the CC at `config.controllerURL`.
    public init(config: StagerConfig, threadPool: NIOThreadPool, logger: Logger) throws {
        let client = ComponentClient(api: config.controllerURL, credential: config.internalCredential, component: "stager")
        self.client = client
        self.logger = logger
        self.stager = try Stager(config: config, client: client, threadPool: threadPool, logger: logger)
    }

    public func run() async throws {
        logger.info("stager starting", metadata: ["stager": "\(stager.config.stagerID)", "controller": "\(stager.config.controllerURL)"])
        try await cancelWhenGracefulShutdown {
            try await stager.run()
        }
        try? await client.shutdown()
    }
}
