import CloudController
import ExecutionAgent
import Foundation
import HealthManager
import Hummingbird
import Logging
import NIOPosix
import PlatformModels
import PostgresStore
import ServiceLifecycle
import Stager

/// Wires components into one ServiceGroup with graceful shutdown on SIGTERM/SIGINT.
enum ComponentRunner {
    /// Every component `all` runs, in start order.
    static let allComponents = ["controller", "stager", "dea", "health-manager"]

    static func run(components: [String], document: ConfigDocument, pidFile: String?, logger: Logger) async throws {
        var services: [any Service] = []
        var pools: [PostgresPool] = []
        let threadPool = NIOThreadPool(numberOfThreads: 8)
        threadPool.start()
        for component in components {
            switch component {
            case "controller":
                let config = try ControllerConfig(document: document)
                let pool = PostgresPool(
                    configuration: PostgresConfiguration(conninfo: config.databaseConninfo, poolSize: config.databasePoolSize),
                    threadPool: threadPool, logger: logger)
                pools.append(pool)
                services.append(CloudController.makeApplication(config: config, pool: pool, threadPool: threadPool, logger: logger))
                logger.info("controller configured", metadata: ["listen": .string("\(config.listenHost):\(config.listenPort)")])
            case "dea":
                guard getuid() == 0 else {
                    throw ConfigError("the execution agent needs root (runc, mounts, network namespaces, nftables)")
                }
                let config = try AgentConfig(document: document)
                services.append(try AgentService(config: config, threadPool: threadPool, logger: logger))
                logger.info("execution agent configured", metadata: [
                    "agent": .string(config.agentID), "state_dir": .string(config.stateDirectory), "subnet": .string(config.subnet)])
            case "stager":
                guard getuid() == 0 else {
                    throw ConfigError("the stager needs root (runc, mounts, network namespaces, nftables)")
                }
                let config = try StagerConfig(document: document)
                services.append(try StagerService(config: config, threadPool: threadPool, logger: logger))
                logger.info("stager configured", metadata: [
                    "stager": .string(config.stagerID), "state_dir": .string(config.stateDirectory), "subnet": .string(config.subnet)])
            case "health-manager":
                let config = try HealthManagerConfig(document: document)
                services.append(HealthManagerService(config: config, logger: logger))
                logger.info("health manager configured", metadata: [
                    "hm.id": .string(config.id), "listen": .string("\(config.listenHost):\(config.listenPort)")])
            default:
                throw ConfigError("unknown component '\(component)'")
            }
        }
        // Only now, with the agent's and stager's directories locked: a second copy refused at
        // its lock must neither overwrite nor remove the running one's pid file.
        if let pidFile {
            try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        }
        defer { if let pidFile { try? FileManager.default.removeItem(atPath: pidFile) } }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        do {
            try await group.run()
        } catch {
            for pool in pools { await pool.shutdown() }
            try? await threadPool.shutdownGracefully()
            throw error
        }
        for pool in pools { await pool.shutdown() }
        try? await threadPool.shutdownGracefully()
    }

    /// A pool for one-shot commands.
    static func withPool(config: ControllerConfig, logger: Logger,
                         _ body: (PostgresPool, NIOThreadPool) async throws -> Void) async throws {
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: config.databaseConninfo, poolSize: 2),
                                threadPool: threadPool, logger: logger)
        do {
            try await body(pool, threadPool)
        } catch {
            await pool.shutdown()
            try? await threadPool.shutdownGracefully()
            throw error
        }
        await pool.shutdown()
        try? await threadPool.shutdownGracefully()
    }
}
