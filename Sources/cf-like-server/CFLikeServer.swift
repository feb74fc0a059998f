import ArgumentParser
import CloudController
import ExecutionAgent
import Foundation
import Logging
import NIOPosix
import PlatformModels
import PostgresStore
import Stager
import ServiceLifecycle

/// `cf-like-server`: one binary, one subcommand per component.
@main
struct CFLikeServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cf-like-server",
        abstract: "Runs cf-like platform components.",
        discussion: """
            Each component runs as its own process under a supervisor (see ops/up), or all of them in one
            process with `all` for tests and the smallest installs.

            Example:
              cf-like-server controller --config config/cf-like.yaml
            """,
        version: PlatformVersion.current,
        subcommands: [Controller.self, Dea.self, StagerCommand.self, HealthManagerCommand.self, RouterCommand.self, All.self,
                      Migrate.self, BootstrapAdmin.self, DeaCleanup.self, BenchContainerStart.self, BenchStaging.self,
                      BenchHealth.self])
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Configuration file (default: $CFLIKE_CONFIG or config/cf-like.yaml).")
    var config: String?

    @Option(help: "Write the process id to this file while running.")
    var pidFile: String?

    func document() throws -> ConfigDocument {
        let env = ProcessInfo.processInfo.environment
        let path = config ?? env["CFLIKE_CONFIG"] ?? "config/cf-like.yaml"
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("configuration file \(path) not found (use --config or CFLIKE_CONFIG)")
        }
        return try ConfigDocument(path: path)
    }

    func logger(_ label: String, document: ConfigDocument) -> Logger {
        LoggingSetup.bootstrap(level: document.string("platform.log_level", default: "info"))
        return Logger(label: label)
    }
}

/// Process-wide logging set-up, done once.
enum LoggingSetup {
    nonisolated(unsafe) private static var done = false

    static func bootstrap(level: String) {
        guard !done else { return }
        done = true
        let parsed = Logger.Level(rawValue: ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = parsed
            return handler
        }
    }
}

/// Runs the Cloud Controller until SIGTERM/SIGINT.
struct Controller: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Cloud Controller (API on controller.listen).",
        discussion: "Example:\n  cf-like-server controller --config config/cf-like.yaml --pid-file var/run/controller.pid")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let document = try options.document()
        let logger = options.logger("cf-like.controller", document: document)
        try await ComponentRunner.run(components: ["controller"], document: document, pidFile: options.pidFile, logger: logger)
    }
}

/// Runs the execution agent (DEA) until SIGTERM/SIGINT; its containers keep running after it.
struct Dea: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dea",
        abstract: "Run the execution agent: app instances in runc containers on this host (needs root).",
        discussion: "Example:\n  cf-like-server dea --config config/cf-like.yaml --pid-file var/run/dea.pid")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let document = try options.document()
        let logger = options.logger("cf-like.dea", document: document)
        try await ComponentRunner.run(components: ["dea"], document: document, pidFile: options.pidFile, logger: logger)
    }
}

/// Runs the stager until SIGTERM/SIGINT; builds in progress are cancelled with it.
struct StagerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stager",
        abstract: "Run the stager: builds app droplets with buildpacks in runc containers on this host (needs root).",
        discussion: "Example:\n  cf-like-server stager --config config/cf-like.yaml --pid-file var/run/stager.pid")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let document = try options.document()
        let logger = options.logger("cf-like.stager", document: document)
        try await ComponentRunner.run(components: ["stager"], document: document, pidFile: options.pidFile, logger: logger)
    }
}

/// Runs a health manager until SIGTERM/SIGINT; it gives its lease back on the way out.
struct HealthManagerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health-manager",
        abstract: "Run a health manager: restarts crashed instances, moves instances off lost and draining agents, raises alerts.",
        discussion: """
            One health manager acts at a time (a lease through the controller); start a second one on another host and it
            stands by. Example:
              cf-like-server health-manager --config config/cf-like.yaml --pid-file var/run/health-manager.pid
            """)
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let document = try options.document()
        let logger = options.logger("cf-like.health-manager", document: document)
        try await ComponentRunner.run(components: ["health-manager"], document: document, pidFile: options.pidFile, logger: logger)
    }
}

/// Stops every instance of this host's agent and removes its network (ops/down).
struct DeaCleanup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dea-cleanup",
        abstract: "Stop every app instance on this host and remove the agent's network (refused while an agent runs on its state directory; needs root).",
        discussion: "Example:\n  cf-like-server dea-cleanup --config config/cf-like.yaml")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("dea-cleanup needs root") }
        let document = try options.document()
        let logger = options.logger("cf-like.dea", document: document)
        var config = try AgentConfig(document: document)
        // Nothing is started here, so no network attachments are made ahead of time.
        config.networkPoolSize = 0
        // A running agent would see its instances stopped under it: refuse while one owns the directory.
        try await AgentService.withStateDirectoryLocked(config) {
            let threadPool = NIOThreadPool(numberOfThreads: 2)
            threadPool.start()
            let agent = try ExecutionAgent(config: config, client: nil, threadPool: threadPool, logger: logger)
            try await agent.prepare()
            let count = await agent.reports().count
            await agent.stopAll()
            try await agent.teardownNetwork()
            try await threadPool.shutdownGracefully()
            print("stopped \(count) instance(s); removed the agent's network")
        }
    }
}

/// `ops/bench/container-start`: agent start → app running, beside bare `runc run /bin/true`.
struct BenchContainerStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-container-start",
        abstract: "Measure container starts through the execution agent against bare runc (needs root).",
        shouldDisplay: false)

    @Option(help: "Starts to measure of each kind.")
    var runs = 50

    @Option(help: "Scratch directory (removed afterwards).")
    var workDirectory = "/tmp/cf-like-bench-container-start"

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark needs root") }
        LoggingSetup.bootstrap(level: "warning")
        let result = try await ContainerStartBenchmark.run(runs: runs, workDirectory: workDirectory, logger: Logger(label: "bench"))
        func row(_ name: String, _ values: [Double]) -> String {
            let p50 = ContainerStartBenchmark.percentile(values, 50), p99 = ContainerStartBenchmark.percentile(values, 99)
            return name.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: "%8.1f %8.1f", p50, p99)
        }
        print("container start over \(runs) runs (ms)              p50      p99")
        print(row("agent: start request -> app process running", result.agentMillis))
        print(row("bare: runc run /bin/true (same rootfs)", result.bareMillis))
        let overhead = ContainerStartBenchmark.percentile(result.agentMillis, 50) - ContainerStartBenchmark.percentile(result.bareMillis, 50)
        print(String(format: "overhead p50: %.1f ms (goal <= 50 ms); ratio p50: %.2fx", overhead,
                     ContainerStartBenchmark.percentile(result.agentMillis, 50) / ContainerStartBenchmark.percentile(result.bareMillis, 50)))
    }
}

/// `ops/bench/staging`: staging with warm caches beside a plain tar + gzip of the same app.
struct BenchStaging: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-staging",
        abstract: "Measure staging of fixture apps against tar + gzip of the same files (needs root).",
        shouldDisplay: false)

    @Option(help: "Stagings to measure per fixture (after one warm-up).")
    var runs = 10

    @Option(help: "Scratch directory (removed afterwards).")
    var workDirectory = "/tmp/cf-like-bench-staging"

    @Option(parsing: .upToNextOption, help: "Fixtures as NAME=BUILDPACK_DIR:APP_DIR.")
    var fixture: [String] = []

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark needs root") }
        LoggingSetup.bootstrap(level: "warning")
        let fixtures = try fixture.map { spec -> StagingBenchmark.Fixture in
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            let dirs = parts.count == 2 ? parts[1].split(separator: ":", maxSplits: 1).map(String.init) : []
            guard parts.count == 2, dirs.count == 2 else { throw ValidationError("--fixture wants NAME=BUILDPACK_DIR:APP_DIR, not \(spec)") }
            return .init(name: parts[0], buildpack: dirs[0], app: dirs[1])
        }
        guard !fixtures.isEmpty else { throw ValidationError("give at least one --fixture") }
        let rows = try await StagingBenchmark.run(fixtures: fixtures, runs: runs, workDirectory: workDirectory, logger: Logger(label: "bench"))
        print("staging with warm caches, \(runs) runs each (ms)      p50      p99   tar+gzip p50   ratio p50   droplet")
        for row in rows {
            let p50 = StagingBenchmark.percentile(row.stagingMillis, 50), p99 = StagingBenchmark.percentile(row.stagingMillis, 99)
            let tar = StagingBenchmark.percentile(row.tarGzipMillis, 50)
            print(row.fixture.padding(toLength: 44, withPad: " ", startingAt: 0)
                  + String(format: "%8.1f %8.1f %14.1f %10.1fx %8d KB", p50, p99, tar, p50 / max(tar, 0.001), row.dropletBytes / 1024))
        }
    }
}

/// Runs every component in one process.
struct All: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every component in one process (tests, smallest installs).",
        discussion: "Example:\n  cf-like-server all --config config/cf-like.yaml")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let document = try options.document()
        let logger = options.logger("cf-like", document: document)
        try await ComponentRunner.run(components: ComponentRunner.allComponents, document: document, pidFile: options.pidFile, logger: logger)
    }
}

/// Applies database migrations and exits.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations and exit.",
        discussion: "Example:\n  cf-like-server migrate --config config/cf-like.yaml")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let document = try options.document()
        let logger = options.logger("cf-like.migrate", document: document)
        let config = try ControllerConfig(document: document)
        try await ComponentRunner.withPool(config: config, logger: logger) { pool, _ in
            let applied = try await CloudController.prepareDatabase(pool: pool, config: config, logger: logger)
            print(applied.isEmpty ? "database schema is up to date" : "applied migrations: \(applied.map(String.init).joined(separator: ", "))")
        }
    }
}

/// Creates the platform admin from a password file when no such user exists.
struct BootstrapAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap-admin",
        abstract: "Create the platform admin user if it does not exist yet.",
        discussion: "Example:\n  cf-like-server bootstrap-admin --password-file var/admin-password")
    @OptionGroup var options: CommonOptions

    @Option(help: "File holding the admin password (one line).")
    var passwordFile: String

    @Option(help: "Username of the admin.")
    var username = "admin"

    func run() async throws {
        let document = try options.document()
        let logger = options.logger("cf-like.bootstrap", document: document)
        guard let data = FileManager.default.contents(atPath: passwordFile),
              let password = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !password.isEmpty
        else { throw ValidationError("cannot read a password from \(passwordFile)") }
        let config = try ControllerConfig(document: document)
        let username = self.username
        try await ComponentRunner.withPool(config: config, logger: logger) { pool, threadPool in
            try await CloudController.prepareDatabase(pool: pool, config: config, logger: logger)
            let created = try await CloudController.bootstrapAdmin(
                pool: pool, config: config, threadPool: threadPool, username: username, password: password)
            print(created ? "created admin user '\(username)'" : "admin user '\(username)' already exists; nothing changed")
        }
    }
}
