import Containers
import Foundation
import Logging
import NIOPosix
import PlatformClient
import PlatformModels

/// Builds, starts, signals and removes one instance's container; knows nothing of the CC.
///
/// Start order (each step undone if a later one fails): droplet layer → per-instance upper
/// layer with its own `/etc/hosts` and `/etc/hostname` → overlay root filesystem → network
/// namespace, veth and host port (a ready one from the network's pool when there is one) →
/// OCI bundle from ``SecureSpec`` → the shim runs `runc run --detach` and from then on owns
/// the container's stdio and exit status.
struct InstanceRunner: InstanceRuntime {
    let runc: any ContainerRuntime
    let shim: ContainerShim
    let network: ContainerNetwork
    let droplets: DropletCache
    let stackSkeleton: String
    let instancesRoot: String
    let agentID: String
    let hostAddress: String
    let pidsLimit: Int
    /// How long the shim may take to start a container (`dea.container_start_timeout_seconds`).
    let containerStartTimeout: Duration
    let threadPool: NIOThreadPool
    let probeClient: HealthProbe
    let logger: Logger

    /// The runner of an agent: its state directory laid out, runc, shim, network and droplet
    /// cache configured from `config`.
    static func make(config: AgentConfig, client: ComponentClient?, threadPool: NIOThreadPool, logger: Logger) throws -> InstanceRunner {
        let state = config.stateDirectory
        let fm = FileManager.default
        for dir in [state, state + "/instances", state + "/runc", state + "/droplets"] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        // The stack skeleton is a lower layer of running overlays: build it once, never rewrite it under them.
        let stack = state + "/stack"
        if !fm.fileExists(atPath: stack + "/etc/passwd") {
            try HostStack(hostname: "localhost").buildSkeleton(at: stack)
        }
        chmod(state, 0o711)
        let runc = try Runc(executable: config.runcPath, root: state + "/runc", logger: logger)
        let shim = try ContainerShim(executable: config.shimPath, runc: runc, logMaxBytes: config.logMaxBytes,
                                     linesPerSecond: config.logLinesPerSecond, burst: config.logLinesPerSecond * 2, logger: logger)
        let network = try ContainerNetwork(
            config: ContainerNetworkConfig(subnet: config.subnet, hostPortRange: config.hostPortRange, allowOutbound: config.allowOutbound,
                                           tableName: config.nftablesTable, interfacePrefix: config.interfacePrefix,
                                           poolSize: config.networkPoolSize),
            logger: logger)
        let droplets = try DropletCache(root: state + "/droplets", client: client, threadPool: threadPool, logger: logger)
        return InstanceRunner(runc: runc, shim: shim, network: network, droplets: droplets, stackSkeleton: stack,
                              instancesRoot: state + "/instances", agentID: config.agentID, hostAddress: config.hostAddress,
                              pidsLimit: config.pidsLimit, containerStartTimeout: .seconds(config.containerStartTimeoutSeconds),
                              threadPool: threadPool, probeClient: HealthProbe(), logger: logger)
    }

    func paths(_ guid: String) -> InstancePaths { InstancePaths(root: instancesRoot, guid: guid) }

    /// The cgroup every hierarchy uses for the instance.
    func cgroupPath(_ record: InstanceRecord) -> String { "/cflike/\(agentID)/\(record.guid)" }

    /// CPU weight proportional to memory: one `cpu.shares` per MB (at least 2, runc's minimum).
    static func cpuShares(memoryMB: Int) -> UInt64 { UInt64(max(2, min(262_144, memoryMB))) }

    /// Runs everything up to a started container and returns the record with the network
    /// attachment, droplet layer and start time filled in.
    func start(_ input: InstanceRecord, layer: String) async throws -> InstanceRecord {
        var record = input
        let p = paths(record.guid)
        let fm = FileManager.default
        var mounted = false
        var attachment: NetworkAttachment?
        do {
            try? fm.removeItem(atPath: p.base)
            for dir in [p.upper + "/etc", p.work, p.rootfs, p.shim, p.bundle] {
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            }
            chmod(p.shim, 0o700)
            let hostname = record.guid.lowercased()
            try Data("\(hostname)\n".utf8).write(to: URL(fileURLWithPath: p.upper + "/etc/hostname"))
            record.dropletLayer = layer

            let overlay = OverlayMount(lowerDirs: [layer, stackSkeleton], upperDir: p.upper, workDir: p.work, target: p.rootfs)
            try overlay.mount()
            mounted = true

            let attached = try await network.attach(id: record.containerID)
            attachment = attached
            record.attachment = attached
            let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\(attached.containerAddress)\t\(hostname)\n"
            try Data(hosts.utf8).write(to: URL(fileURLWithPath: p.rootfs + "/etc/hosts"))
            // The record names the layer and the network before a container can exist.
            try persist(record)

            let now = Date()
            var assignment = record.assignment
            if assignment.command.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                assignment.command = Self.stagedStartCommand(layer: layer) ?? ""
            }
            guard !assignment.command.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw AgentError("the droplet has no start command for process type '\(assignment.processType)' and the process sets none")
            }
            let environment = InstanceEnvironment(
                assignment: assignment,
                placement: .init(hostAddress: hostAddress, hostPort: attached.hostPort,
                                 containerAddress: attached.containerAddress, startedAt: now))
            let secure = SecureSpec(
                args: environment.arguments,
                env: environment.variables,
                cwd: InstanceEnvironment.appDirectory,
                rootfsPath: p.rootfs,
                hostname: hostname,
                limits: .init(memoryBytes: Int64(assignment.memoryMB) << 20,
                              cpuShares: Self.cpuShares(memoryMB: assignment.memoryMB),
                              pids: Int64(pidsLimit),
                              nofile: UInt64(max(64, assignment.fileDescriptors))),
                extraMounts: HostStack().readOnlyMounts(),
                network: .path(attached.namespacePath),
                cgroupsPath: cgroupPath(record),
                annotations: ["cf-like.app-guid": assignment.appGUID, "cf-like.process-type": assignment.processType,
                              "cf-like.index": String(assignment.index)])
            _ = try OCIBundle.create(at: p.bundle, spec: try secure.makeSpec())
            _ = try await shim.launch(id: record.containerID, bundle: p.bundle, stateDir: p.shim, timeout: containerStartTimeout)
            record.startedAt = now.timeIntervalSince1970
            // The caller saves the started record at once (with whatever it learned meanwhile,
            // such as a stop request), so it is not written twice here.
            return record
        } catch {
            try? await runc.delete(id: record.containerID, force: true)
            if let attachment { try? await network.detach(attachment) }
            if mounted { try? OverlayMount.unmount(p.rootfs) }
            throw error
        }
    }

    /// The start command a buildpack left in `staging_info.yml` (JSON, as CF writes it, or a
    /// `start_command:` line).
    static func stagedStartCommand(layer: String) -> String? {
        guard let data = FileManager.default.contents(atPath: layer + "/home/vcap/staging_info.yml") else { return nil }
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let command = object["start_command"] as? String {
            return command
        }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("start_command:") {
            var value = line.dropFirst("start_command:".count).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// Signals the container's first process (`all`: every process in it).
    func signal(_ record: InstanceRecord, _ signal: Int32, all: Bool) async {
        do {
            try await runc.kill(id: record.containerID, signal: signal, all: all)
        } catch {
            logger.debug("signal failed", metadata: ["instance": "\(record.guid)", "error": "\(error)"])
        }
    }

    /// How the container ended, once the shim has written it; OOM judged from the cgroup,
    /// which must be read before ``removeContainer(_:)``.
    func exit(of record: InstanceRecord) -> (status: Int, reason: String)? {
        guard let exit = ContainerShim.exit(stateDir: paths(record.guid).shim) else { return nil }
        let oom = (try? CgroupReader().stats(cgroupPath: cgroupPath(record)))?.wasOOMKilled ?? false
        return (exit.status, Self.describe(exit, outOfMemory: oom))
    }

    /// CF's words for an exit.
    static func describe(_ exit: ContainerExit, outOfMemory: Bool) -> String {
        if outOfMemory { return "out of memory" }
        switch exit {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let signal): return "killed by signal \(signal)"
        }
    }

    /// Removes the container, its cgroup, mounts and network, but keeps the instance's
    /// directory (record and log) until ``forget(_:)``.
    func removeContainer(_ record: InstanceRecord) async {
        do {
            try await runc.delete(id: record.containerID, force: true)
        } catch let error as ContainerError where (error.stderrTail ?? "").contains("does not exist") || error.kind == .notFound {
        } catch {
            logger.warning("runc delete failed", metadata: ["instance": "\(record.guid)", "error": "\(error)"])
        }
        let p = paths(record.guid)
        if (try? MountTable.isMounted(p.rootfs)) == true {
            do { try OverlayMount.unmount(p.rootfs) } catch {
                logger.warning("unmount failed", metadata: ["instance": "\(record.guid)", "error": "\(error)"])
            }
        }
        if let attachment = record.attachment {
            do { try await network.detach(attachment) } catch {
                logger.warning("network detach failed", metadata: ["instance": "\(record.guid)", "error": "\(error)"])
            }
        }
    }

    /// Deletes the instance's directory (its writable layer, bundle, shim state and log).
    func forget(_ record: InstanceRecord) {
        try? FileManager.default.removeItem(atPath: paths(record.guid).base)
    }

    /// Writes the record atomically.
    func persist(_ record: InstanceRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let p = paths(record.guid)
        try FileManager.default.createDirectory(atPath: p.base, withIntermediateDirectories: true)
        try encoder.encode(record).write(to: URL(fileURLWithPath: p.record), options: [.atomic])
    }

    /// Every record on disk.
    func loadRecords() -> [InstanceRecord] {
        let fm = FileManager.default
        var records: [InstanceRecord] = []
        for name in (try? fm.contentsOfDirectory(atPath: instancesRoot)) ?? [] {
            let path = paths(name).record
            guard let data = fm.contents(atPath: path) else { continue }
            do {
                records.append(try JSONDecoder().decode(InstanceRecord.self, from: data))
            } catch {
                logger.warning("unreadable instance record", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return records
    }

    // MARK: InstanceRuntime

    func layer(for droplet: DropletRef) async throws -> String {
        try await droplets.layer(for: droplet)
    }

    func installDroplet(archive: String, sha256: String) async throws {
        _ = try await droplets.install(archive: archive, sha256: sha256)
    }

    func shimAlive(_ record: InstanceRecord) -> Bool {
        ContainerShim.shimAlive(stateDir: paths(record.guid).shim)
    }

    func containerIDs() async throws -> Set<String> {
        Set(try await runc.list().map(\.id))
    }

    func reclaim(keeping records: [InstanceRecord], adoptedContainers: Set<String>) async throws {
        for id in try await containerIDs() where !adoptedContainers.contains(id) {
            logger.warning("removing unknown container", metadata: ["container": "\(id)"])
            do { try await runc.delete(id: id, force: true) } catch {
                logger.warning("cannot remove unknown container", metadata: ["container": "\(id)", "error": "\(error)"])
            }
        }
        let kept = Dictionary(records.map { ($0.guid, $0) }, uniquingKeysWith: { first, _ in first })
        // Mounts under our instance directory that no running instance uses.
        let root = instancesRoot + "/"
        for mount in (try? MountTable.current()) ?? [] where mount.hasPrefix(root) && mount.hasSuffix("/rootfs") {
            let guid = String(mount.dropFirst(root.count).dropLast("/rootfs".count))
            if kept[guid]?.startedAt == nil {
                do { try OverlayMount.unmount(mount) } catch {
                    logger.warning("cannot unmount a leftover root filesystem", metadata: ["mount": "\(mount)", "error": "\(error)"])
                }
            }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: instancesRoot)) ?? [] where kept[name] == nil {
            try? FileManager.default.removeItem(atPath: instancesRoot + "/" + name)
        }
        try await network.prepare(keeping: records.compactMap(\.attachment))
    }

    func probe(_ spec: HealthCheckSpec, address: String, port: Int) async -> HealthProbe.Outcome {
        await probeClient.check(spec, address: address, port: port)
    }

    func counters(of record: InstanceRecord) -> CgroupStats? {
        try? CgroupReader().stats(cgroupPath: cgroupPath(record))
    }

    func diskBytes(of record: InstanceRecord) async -> Int64? {
        let upper = paths(record.guid).upper
        let layer = record.dropletLayer.map { $0 + "/home/vcap" }
        return try? await threadPool.runIfActive {
            DiskUsage.bytes(under: upper) + (layer.map { DiskUsage.bytes(under: $0) } ?? 0)
        }
    }

    func logDirectory(of guid: String) -> String { paths(guid).shim }

    func teardown() async throws {
        try await network.teardown()
        // The agent's (now empty) cgroup parent in every hierarchy.
        await CgroupParent("/cflike/\(agentID)").remove()
    }
}

/// An agent failure with human words.
struct AgentError: Error, CustomStringConvertible, Sendable {
    let description: String
    init(_ message: String) { description = message }
}
