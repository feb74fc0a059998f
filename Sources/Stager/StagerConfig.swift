import Foundation
import PlatformModels

/// The stager's configuration: section `stager` of `config/cf-like.yaml` (every key is
/// documented there), plus the controller URL and the component credential.
public struct StagerConfig: Sendable {
    /// This stager's id at the CC (lower-case letters, digits, dots, dashes).
    public var stagerID: String
    /// Base URL of the Cloud Controller.
    public var controllerURL: String
    /// `Authorization: component <credential>` for the CC's internal API.
    public var internalCredential: String
    /// Everything the stager keeps on disk: buildpack checkouts, builds in progress, runc state.
    public var stateDirectory: String
    /// The stacks this stager builds for.
    public var stacks: [String]
    /// Builds staged at the same time at most, so staging never starves running apps.
    public var maxParallel: Int
    /// Tasks (processes + threads) per staging container.
    public var pidsLimit: Int
    /// Seconds a poll waits for work when none is queued.
    public var pollWaitSeconds: Int
    /// Staging log lines a second before lines are dropped (and counted).
    public var logLinesPerSecond: Int
    /// Bytes of staging log kept on disk at once (older lines have been shipped).
    public var logMaxBytes: Int
    /// Limits for one buildpack fetch.
    public var buildpackFetchTimeoutSeconds: Int
    public var buildpackMaxBytes: Int
    /// Hosts whose buildpacks may be fetched over plain `http://` (for an in-house git server).
    public var gitHTTPHosts: [String]
    /// Largest package, cache or droplet the stager handles (bytes, compressed and extracted).
    public var maxArchiveBytes: Int
    /// Container networking of staging containers (outbound allowed for package registries;
    /// the host's own ports are never reachable from them).
    public var subnet: String
    public var hostPortRange: ClosedRange<Int>
    public var allowOutbound: Bool
    public var nftablesTable: String
    public var interfacePrefix: String
    /// The runc executable (nil: found on PATH).
    public var runcPath: String?
    /// The shim executable (nil: next to this program, then PATH).
    public var shimPath: String?

    /// Reads the keys; errors name the key at fault.
    public init(document: ConfigDocument) throws {
        controllerURL = try document.controllerURL(for: "stager")
        internalCredential = try document.secret(fileKey: "controller.internal_credential_file", default: "var/secrets/internal-credential")
        stagerID = try document.componentID("stager.stager_id", prefix: "stager")
        stateDirectory = document.path("stager.state_dir", default: "var/stager")
        stacks = document.string("stager.stacks", default: "cflike-host").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        maxParallel = try document.int("stager.max_parallel", default: 2, range: 1...64)
        pidsLimit = try document.int("stager.pids_limit", default: 2048, range: 16...1_000_000)
        pollWaitSeconds = try document.int("stager.poll_wait_seconds", default: 30, range: 1...60)
        logLinesPerSecond = try document.int("stager.log_lines_per_second", default: 2000, range: 1...1_000_000)
        logMaxBytes = try document.int("stager.log_max_bytes", default: 4 << 20, range: 65536...(1 << 30))
        buildpackFetchTimeoutSeconds = try document.int("stager.buildpack_fetch_timeout_seconds", default: 300, range: 5...3600)
        buildpackMaxBytes = try document.int("stager.buildpack_max_bytes", default: 512 << 20, range: 1 << 20...(8 << 30))
        gitHTTPHosts = document.string("stager.git_http_hosts", default: document.string("controller.git_http_hosts", default: "")).split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }.filter { !$0.isEmpty }
        maxArchiveBytes = try document.int("stager.max_archive_bytes", default: 4 << 30, range: 1 << 20...(64 << 30))
        subnet = document.string("stager.subnet", default: "10.253.0.0/24")
        let low = try document.int("stager.host_port_min", default: 62000, range: 1024...65535)
        let high = try document.int("stager.host_port_max", default: 62063, range: 1024...65535)
        guard low <= high else { throw ConfigError("stager.host_port_min (\(low)) must not exceed stager.host_port_max (\(high))") }
        hostPortRange = low...high
        allowOutbound = try document.bool("stager.allow_outbound", default: true)
        nftablesTable = document.string("stager.nftables_table", default: "cflike_stager")
        interfacePrefix = document.string("stager.interface_prefix", default: "cfs")
        let runc = document.string("stager.runc", default: document.string("dea.runc", default: ""))
        runcPath = runc.isEmpty ? nil : runc
        let shim = document.string("stager.shim", default: document.string("dea.shim", default: ""))
        shimPath = shim.isEmpty ? nil : document.resolve(shim)
    }
}
