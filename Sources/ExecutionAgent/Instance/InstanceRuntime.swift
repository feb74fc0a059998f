import Containers
import Foundation
import PlatformModels

/// Everything an instance needs of its host: droplets, containers, their exit records,
/// health probes, usage counters and the records on disk. ``InstanceRunner`` is the real one
/// (overlay, network namespace, shim, runc); tests drive the agent's decisions through a fake.
///
/// Every method that waits on the outside world is bounded by the implementation (runc and
/// `ip`/`nft` calls have deadlines that finish the caller, probes their invocation timeout)
/// and honours cancellation.
protocol InstanceRuntime: Sendable {
    /// The extracted droplet's directory, downloaded first if needed.
    func layer(for droplet: DropletRef) async throws -> String
    /// Extracts a droplet archive already on disk (tests, benchmarks, agents without a CC).
    func installDroplet(archive: String, sha256: String) async throws
    /// Builds and starts the instance's container; the record comes back with its network
    /// attachment, droplet layer and start time.
    func start(_ record: InstanceRecord, layer: String) async throws -> InstanceRecord
    /// How the container ended, once its shim recorded it; nil while it runs.
    func exit(of record: InstanceRecord) -> (status: Int, reason: String)?
    /// Whether the container's shim still watches it.
    func shimAlive(_ record: InstanceRecord) -> Bool
    /// Signals the container's first process (`all`: every process in it).
    func signal(_ record: InstanceRecord, _ signal: Int32, all: Bool) async
    /// Removes container, mounts and network; keeps the record and the log.
    func removeContainer(_ record: InstanceRecord) async
    /// Removes everything the instance left (record and log included).
    func forget(_ record: InstanceRecord)
    /// Writes the record so a restarted agent can adopt the instance.
    func persist(_ record: InstanceRecord) throws
    /// Every record on disk.
    func loadRecords() -> [InstanceRecord]
    /// Ids of every container the runtime holds.
    func containerIDs() async throws -> Set<String>
    /// After adoption: removes containers, mounts, directories and network state that no
    /// kept instance owns.
    func reclaim(keeping records: [InstanceRecord], adoptedContainers: Set<String>) async throws
    /// One health check of the instance at `address`.
    func probe(_ spec: HealthCheckSpec, address: String, port: Int) async -> HealthProbe.Outcome
    /// The container's cgroup counters (CPU, memory), or nil when unreadable.
    func counters(of record: InstanceRecord) -> CgroupStats?
    /// Bytes the instance's writable layer and droplet take on disk.
    func diskBytes(of record: InstanceRecord) async -> Int64?
    /// Where the container's shim writes its log (read by ``ShimLogReader``).
    func logDirectory(of guid: String) -> String
    /// Removes the host's network state and cgroup parent (after every instance stopped).
    func teardown() async throws
}

extension InstanceRuntime {
    /// Whether the container still runs: no exit recorded and its shim alive.
    func isRunning(_ record: InstanceRecord) -> Bool {
        exit(of: record) == nil && shimAlive(record)
    }
}
