import ArgumentParser
import Foundation
import HealthManager

/// `ops/bench/health`: one health manager decision pass over a large synthetic platform.
struct BenchHealth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-health",
        abstract: "Measure the health manager's decision pass over a synthetic platform (no root, no database).",
        shouldDisplay: false)

    @Option(help: "Started apps in the synthetic platform.")
    var apps = 1000

    @Option(help: "Desired instances per app.")
    var instancesPerApp = 3

    @Option(help: "Execution agents (at least 3: one is lost, one is draining).")
    var agents = 20

    @Option(help: "Timed decision passes (after one warm-up).")
    var passes = 200

    @Flag(help: "Print the report as JSON (snake_case keys; times in milliseconds).")
    var json = false

    func validate() throws {
        guard apps >= 1, instancesPerApp >= 1, passes >= 1 else { throw ValidationError("--apps, --instances-per-app and --passes must be at least 1") }
        guard agents >= 3 else { throw ValidationError("--agents must be at least 3 (one lost, one draining, one healthy)") }
    }

    func run() throws {
        let report = DecisionBenchmark.run(apps: apps, instancesPerApp: instancesPerApp, agents: agents, passes: passes)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
    }
}
