import Containers
import Foundation
import Logging
import PlatformModels

/// Builds, starts, signals and removes one instance's container; knows nothing of the CC.
///
/// Start order (each step undone if a later one fails): droplet layer → per-instance upper
/// layer with its own `/etc/hosts` and `/etc/hostname` → overlay root filesystem → network
/// namespace, veth and host port → OCI bundle from ``SecureSpec`` → the shim runs
/// `runc create` + `runc start` and from then on owns the container's stdio and exit status.
struct InstanceRunner: Sendable {
    let runc: Runc
    let shim: ContainerShim
    let network: ContainerNetwork
    let droplets: DropletCache
    let stackSkeleton: String
    let instancesRoot: String
    let agentID: String
    let hostAddress: String
    let pidsLimit: Int
    let logger: Logger

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
            try persist(record)

            let overlay = OverlayMount(lowerDirs: [layer, stackSkeleton], upperDir: p.upper, workDir: p.work, target: p.rootfs)
            try overlay.mount()
            mounted = true

            let attached = try await network.attach(id: record.containerID)
            attachment = attached
            record.attachment = attached
            let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\(attached.containerAddress)\t\(hostname)\n"
            try Data(hosts.utf8).write(to: URL(fileURLWithPath: p.rootfs + "/etc/hosts"))
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
            _ = try await shim.launch(id: record.containerID, bundle: p.bundle, stateDir: p.shim)
            record.startedAt = now.timeIntervalSince1970
            try persist(record)
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
    func signal(_ record: InstanceRecord, _ signal: Int32, all: Bool = false) async {
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

    /// Whether the shim still watches the container.
    func isRunning(_ record: InstanceRecord) -> Bool {
        ContainerShim.exit(stateDir: paths(record.guid).shim) == nil && ContainerShim.shimAlive(stateDir: paths(record.guid).shim)
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
}

/// An agent failure with human words.
struct AgentError: Error, CustomStringConvertible, Sendable {
    let description: String
    init(_ message: String) { description = message }
}
