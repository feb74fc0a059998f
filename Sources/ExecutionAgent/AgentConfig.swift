import Foundation
import PlatformModels

/// The execution agent's configuration: section `dea` of `config/cf-like.yaml` (every key is
/// documented there), plus the controller URL and the component credential it shares with the
/// other components.
public struct AgentConfig: Sendable {
    /// This agent's id at the CC (lower-case letters, digits, dots, dashes).
    public var agentID: String
    /// Address routers on other hosts use to reach this host's instance ports.
    public var hostAddress: String
    /// Base URL of the Cloud Controller.
    public var controllerURL: String
    /// `Authorization: component <credential>` for the CC's internal API.
    public var internalCredential: String
    /// Everything the agent keeps on disk: droplets, instances, runc state.
    public var stateDirectory: String
    /// The stacks this agent runs (the host userland stack).
    public var stacks: [String]
    public var capacity: AgentCapacity
    /// Tasks (processes + threads) per instance.
    public var pidsLimit: Int
    /// Seconds between heartbeats.
    public var heartbeatIntervalSeconds: Int
    /// Seconds a stopping instance gets between SIGTERM and SIGKILL.
    public var stopGraceSeconds: Int
    /// Seconds between liveness checks of a healthy instance.
    public var livenessIntervalSeconds: Int
    /// Seconds between start checks until an instance is healthy.
    public var startCheckIntervalSeconds: Double
    /// Instances started at the same time at most.
    public var parallelStarts: Int
    /// Seconds a container's start (its shim's `runc run --detach`) may take; past it the
    /// shim and what it started are killed and the instance is failed.
    public var containerStartTimeoutSeconds: Int
    /// Bytes of log an instance may keep on disk (the shim rotates at half).
    public var logMaxBytes: Int
    /// Lines per second an instance may log before lines are dropped (and counted).
    public var logLinesPerSecond: Int
    /// Lines kept in memory for shipping when the CC is unreachable; older ones are dropped.
    public var logBufferLines: Int
    /// Container networking.
    public var subnet: String
    public var hostPortRange: ClosedRange<Int>
    public var allowOutbound: Bool
    public var nftablesTable: String
    public var interfacePrefix: String
    /// Network attachments (namespace, veth, host port) kept ready for the next starts.
    public var networkPoolSize: Int
    /// The runc executable (empty: found on PATH).
    public var runcPath: String?
    /// The shim executable (empty: next to this program, then PATH).
    public var shimPath: String?

    /// Reads the keys; errors name the key at fault.
    public init(document: ConfigDocument) throws {
        controllerURL = try document.controllerURL(for: "dea")
        internalCredential = try document.secret(fileKey: "controller.internal_credential_file", default: "var/secrets/internal-credential")
        agentID = try document.componentID("dea.agent_id", prefix: "dea")
        hostAddress = document.string("dea.host_address", default: "127.0.0.1")
        stateDirectory = document.path("dea.state_dir", default: "var/dea")
        stacks = document.string("dea.stacks", default: "cflike-host").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        let hostMemoryMB = Int(ProcessInfo.processInfo.physicalMemory / (1 << 20))
        capacity = AgentCapacity(
            memoryMB: try document.int("dea.memory_mb", default: max(256, hostMemoryMB * 3 / 4), range: 64...(1 << 24)),
            diskMB: try document.int("dea.disk_mb", default: 32768, range: 64...(1 << 30)),
            instances: try document.int("dea.max_instances", default: 250, range: 1...1000))
        pidsLimit = try document.int("dea.pids_limit", default: 1024, range: 16...1_000_000)
        heartbeatIntervalSeconds = try document.int("dea.heartbeat_interval_seconds", default: 5, range: 1...300)
        stopGraceSeconds = try document.int("dea.stop_grace_seconds", default: 10, range: 0...600)
        livenessIntervalSeconds = try document.int("dea.liveness_interval_seconds", default: 30, range: 1...3600)
        startCheckIntervalSeconds = Double(try document.int("dea.start_check_interval_ms", default: 200, range: 50...60000)) / 1000
        parallelStarts = try document.int("dea.parallel_starts", default: 4, range: 1...64)
        containerStartTimeoutSeconds = try document.int("dea.container_start_timeout_seconds", default: 60, range: 1...600)
        logMaxBytes = try document.int("dea.log_max_bytes", default: 8 << 20, range: 65536...(1 << 30))
        logLinesPerSecond = try document.int("dea.log_lines_per_second", default: 1000, range: 1...1_000_000)
        logBufferLines = try document.int("dea.log_buffer_lines", default: 10000, range: 100...10_000_000)
        subnet = document.string("dea.subnet", default: "10.254.0.0/22")
        let low = try document.int("dea.host_port_min", default: 61000, range: 1024...65535)
        let high = try document.int("dea.host_port_max", default: 61999, range: 1024...65535)
        guard low <= high else { throw ConfigError("dea.host_port_min (\(low)) must not exceed dea.host_port_max (\(high))") }
        hostPortRange = low...high
        allowOutbound = try document.bool("dea.allow_outbound", default: true)
        nftablesTable = document.string("dea.nftables_table", default: "cflike_dea")
        interfacePrefix = document.string("dea.interface_prefix", default: "cfl")
        networkPoolSize = try document.int("dea.network_pool_size", default: 2, range: 0...64)
        let runc = document.string("dea.runc", default: "")
        runcPath = runc.isEmpty ? nil : runc
        let shim = document.string("dea.shim", default: "")
        shimPath = shim.isEmpty ? nil : document.resolve(shim)
    }
}
