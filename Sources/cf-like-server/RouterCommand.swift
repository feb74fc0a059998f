import AppRouter
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

/// Runs the HTTP router until SIGTERM/SIGINT (graceful drain).
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Run the HTTP router (public listener on router.listen, /health and /metrics on router.status_listen).",
        discussion: """
            Routes requests by Host and path to the instances in the Cloud Controller's route table
            (long-polled from controller.external_url with controller.internal_credential_file).

            Example:
              cf-like-server router --config config/cf-like.yaml --pid-file var/run/router.pid
            """)
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let document = try options.document()
        let logger = options.logger("cf-like.router", document: document)
        let config = try RouterConfig(document: document)
        if let pidFile = options.pidFile {
            try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        }
        defer { if let pidFile = options.pidFile { try? FileManager.default.removeItem(atPath: pidFile) } }
        if !config.accessLog.isEmpty && config.accessLog != "-" {
            try FileManager.default.createDirectory(atPath: (config.accessLog as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
        }
        let router = AppRouter(config: config, logger: logger)
        let group = ServiceGroup(services: [router], gracefulShutdownSignals: [.sigterm, .sigint],
                                 cancellationSignals: [], logger: logger)
        try await group.run()
    }
}
