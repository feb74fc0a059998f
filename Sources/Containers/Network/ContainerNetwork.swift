import Foundation
import Logging

/// Networking of containers on one host: a network namespace per container with a veth pair
/// and a /30 of ``ContainerNetworkConfig/subnet``, a host port forwarded to the container's port,
/// and one nftables table that keeps containers away from each other and from the host.
///
/// What the table enforces, for every container:
/// - inbound: the host port on any of the host's own addresses (not 127.0.0.0/8) reaches the
///   container's port; the host itself may dial the container address directly; nothing else
///   from outside reaches a container.
/// - to the host: no new connection, on any address or port (replies to the host's own
///   connections pass).
/// - to other containers: nothing, neither directly nor through their host ports.
/// - to the outside: masqueraded behind the host when ``ContainerNetworkConfig/allowOutbound``,
///   dropped otherwise; ``ContainerNetworkConfig/deniedOutboundNetworks`` always dropped.
///
/// With ``ContainerNetworkConfig/poolSize`` above 0 the network keeps that many attachments
/// ready ahead of time, made in the background exactly as ``attach(id:)`` makes one (table
/// elements first, then namespace and veth), so that an attach only hands one out. A pooled
/// attachment is complete, host port included: the port forwards to the pooled namespace's
/// address, where nothing runs until the container that takes it does. Pooled attachments are
/// never reused: each is handed to one container, detach removes it like any other, and the
/// pool is refilled with new ones after each take. On the host they are named like every other
/// attachment (prefix and slot); ``prepare(keeping:)`` removes those of a previous run with the
/// other leftovers and makes new ones, and ``teardown()`` removes them.
///
/// Operations run one at a time (the next waits for the one before), so allocation, commands
/// and bookkeeping never interleave; the one exception is handing out a ready pooled
/// attachment, which needs no command and does not wait for the refill's turn. The module
/// needs root, `ip` (iproute2) and `nft`.
public actor ContainerNetwork {
    /// The steps of ``attach(id:)``, for tests that make one fail.
    enum AttachStep: Sendable {
        case elements, hostSide, containerSide
    }

    let plan: NetworkPlan
    let host: HostNetworking
    private let logger: Logger
    private var current: [String: NetworkAttachment] = [:]
    private var slots: RoundRobinAllocator
    private var ports: RoundRobinAllocator
    private var prepared = false
    private var pool: NetworkPool
    /// Whether the turn is the refill's now (a ready attachment may be taken meanwhile).
    private var refillHoldsTurn = false
    private var poolWaiters: [CheckedContinuation<Void, Never>] = []
    /// How long after a take the refill waits before it begins: the start that took the
    /// attachment runs its heaviest part (runc) right then, and the refill's `ip` and `nft`
    /// would compete with it for the CPU.
    var refillDelay: Duration = .milliseconds(300)
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    /// Set by tests: ``attach(id:)`` fails right after this step.
    private var failAfter: AttachStep?

    /// Validates `config` (throws ``ContainerError`` `.invalidArgument` naming a bad subnet, port
    /// range, table name or prefix) and finds `ip` and `nft`. Touches nothing on the host.
    public init(config: ContainerNetworkConfig, logger: Logger) throws {
        plan = try NetworkPlan(config)
        host = try HostNetworking(logger: logger)
        self.logger = logger
        slots = RoundRobinAllocator(0...(plan.slotCount - 1))
        ports = RoundRobinAllocator(config.hostPortRange)
        pool = NetworkPool(target: config.poolSize)
    }

    /// The attachments in use, ordered by container id.
    public var attachments: [NetworkAttachment] {
        current.values.sorted { $0.id < $1.id }
    }

    /// The pool's ready attachments (no container has them; `id` empty), ordered by interface.
    public var pooled: [NetworkAttachment] {
        pool.ready.sorted { $0.hostInterface < $1.hostInterface }
    }

    /// Returns once no refill of the pool runs: the pool is full, or making one more failed or
    /// found no free address or port. Benchmarks and tests wait here for a settled host.
    public func waitForPool() async {
        guard pool.refilling else { return }
        await withCheckedContinuation { poolWaiters.append($0) }
    }

    // MARK: Start

    /// Gets the host ready when its owner starts, fresh or after a restart.
    ///
    /// Refuses a subnet that overlaps a route, address or name server of the host; sets
    /// `net.ipv4.ip_forward` to 1 (and logs it) when it was not; removes every veth and
    /// namespace named like ours that is not in `keeping`; and rebuilds the table in one
    /// transaction so it holds exactly the elements of `keeping` (adopted instances, which keep
    /// working throughout). Each kept attachment must be one this configuration could have made.
    /// Pooled attachments (this run's or a previous one's) are among what is removed; the pool
    /// is filled anew in the background afterwards.
    public func prepare(keeping: [NetworkAttachment]) async throws {
        await acquire()
        defer { release() }

        var ids: Set<String> = []
        var slotsKept: Set<Int> = []
        var portsKept: Set<Int> = []
        for attachment in keeping {
            let slot = try plan.checkedSlot(of: attachment)
            guard ids.insert(attachment.id).inserted else {
                throw ContainerError(.invalidArgument, "two kept network attachments belong to container \"\(attachment.id)\"")
            }
            guard slotsKept.insert(slot).inserted else {
                throw ContainerError(.invalidArgument, "two kept network attachments use the address \(attachment.containerAddress)")
            }
            guard portsKept.insert(attachment.hostPort).inserted else {
                throw ContainerError(.invalidArgument, "two kept network attachments use the host port \(attachment.hostPort)")
            }
        }

        // Whatever is ready now is removed below with everything else not kept.
        _ = pool.drain()
        try await checkSubnetIsFree()
        if try host.enableForwarding() {
            logger.notice(
                "set net.ipv4.ip_forward=1 (it was 0): host ports are forwarded to containers and their outbound traffic is routed")
        }
        let keptNames = Set(keeping.map(\.hostInterface))
        try await removeOurs(except: keptNames)
        for attachment in keeping where !host.interfaceExists(attachment.hostInterface) || !host.namespaceExists(attachment.namespaceName) {
            logger.warning(
                "kept network attachment is missing its veth or namespace; its address and port stay reserved until it is detached",
                metadata: metadata(attachment))
        }
        try await host.nftScript(
            NetworkRuleset.rebuild(plan, attachments: keeping), purpose: "building the nftables table \(plan.config.tableName)")

        current = Dictionary(uniqueKeysWithValues: keeping.map { ($0.id, $0) })
        slots = RoundRobinAllocator(slots.range)
        ports = RoundRobinAllocator(ports.range)
        for slot in slotsKept { slots.reserve(slot) }
        for port in portsKept { ports.reserve(port) }
        slots.resumeAfterUsed()
        ports.resumeAfterUsed()
        prepared = true
        logger.info(
            "container network ready",
            metadata: [
                "network.subnet": "\(plan.subnet)", "network.table": "\(plan.config.tableName)",
                "network.kept": "\(keeping.count)", "network.allow_outbound": "\(plan.config.allowOutbound)",
                "network.pool_size": "\(pool.target)",
            ])
        scheduleRefill(after: .zero)
    }

    /// Refuses a subnet that shares an address with any route of any routing table (which
    /// includes the host's own addresses, in the `local` table) or with a name server the
    /// containers would be given. Routes of our own veths are left out: they are adopted
    /// containers' or leftovers about to be removed.
    private func checkSubnetIsFree() async throws {
        let subnet = plan.subnet
        for route in try await host.routes() {
            if let dev = route.dev, plan.slot(ofName: dev) != nil { continue }
            guard route.dst != "default", let network = IPv4Network(route.dst, strict: false), network.prefixLength > 0 else { continue }
            if network.overlaps(subnet) {
                let kind = route.type.map { "\($0) " } ?? ""
                let table = route.table.map { " (table \($0))" } ?? ""
                throw ContainerError(
                    .invalidArgument,
                    "container subnet \(subnet) overlaps the host's \(kind)route \(route.dst) dev \(route.dev ?? "-")\(table); choose a subnet that overlaps no route or address of this host (see `ip route show table all`)")
            }
        }
        let resolvConf = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        for server in HostNetworking.nameservers(resolvConf: resolvConf) where subnet.contains(server) {
            throw ContainerError(
                .invalidArgument,
                "container subnet \(subnet) contains the name server \(server) of /etc/resolv.conf, which containers must reach; choose another subnet")
        }
    }

    // MARK: Attach and detach

    /// Gives container `id` a namespace, a veth pair, an address, a default route, loopback and
    /// a host port, and adds it to the table's sets: a ready one from the pool when there is
    /// one (no command runs then), else one made now.
    ///
    /// Throws when the subnet or the port range is exhausted, when `id` already has an
    /// attachment, or before ``prepare(keeping:)``. A failure part-way removes whatever this
    /// call created.
    public func attach(id: String) async throws -> NetworkAttachment {
        // Taking a ready attachment is bookkeeping only; the refill, if it holds the turn, only
        // touches the one it is making, so that take need not wait for it.
        if !busy || refillHoldsTurn {
            try checkAttachable(id)
            if let taken = takePooled(for: id) { return taken }
        }
        await acquire()
        defer { release() }

        try checkAttachable(id)
        if let taken = takePooled(for: id) { return taken }
        let attachment = try await make(id: id)
        current[id] = attachment
        logger.info("container network attached", metadata: metadata(attachment))
        return attachment
    }

    private func checkAttachable(_ id: String) throws {
        guard prepared else {
            throw ContainerError(.invalidArgument, "the container network is not prepared: call prepare(keeping:) first")
        }
        guard !id.isEmpty, id.count <= 256, !id.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 0x20 } == true }) else {
            throw ContainerError(.invalidArgument, "container id \"\(id)\" must be 1 to 256 printable characters")
        }
        if let existing = current[id] {
            throw ContainerError(
                .invalidArgument, "container \"\(id)\" already has a network attachment (\(existing.containerAddress), host port \(existing.hostPort))")
        }
    }

    /// Hands the oldest ready attachment to `id` and has the pool refilled.
    private func takePooled(for id: String) -> NetworkAttachment? {
        guard let attachment = pool.take(for: id) else { return nil }
        current[id] = attachment
        logger.info("container network attached from the pool", metadata: metadata(attachment))
        scheduleRefill(after: refillDelay)
        return attachment
    }

    /// Allocates an address and a host port and plumbs them; on failure nothing of it is left
    /// (or, when even the rollback failed, its address and port stay reserved).
    private func make(id: String) async throws -> NetworkAttachment {
        guard let slot = slots.allocate() else {
            throw ContainerError(
                .other,
                "no free container address: all \(plan.slotCount) /30 slots of \(plan.subnet) are in use; configure a larger subnet")
        }
        guard let port = ports.allocate() else {
            slots.release(slot)
            let range = ports.range
            throw ContainerError(
                .other,
                "no free host port: all \(range.count) ports of \(range.lowerBound)...\(range.upperBound) are in use; configure a larger host port range")
        }
        let attachment = plan.attachment(id: id, slot: slot, hostPort: port)
        do {
            try await removeLeftovers(of: attachment)
        } catch {
            slots.release(slot)
            ports.release(port)
            throw error
        }
        do {
            try await plumb(attachment)
        } catch {
            // The rollback runs in its own task so that a cancelled caller (which made the
            // commands above fail) does not cancel the cleanup too.
            let removal = Task { [plan, host] in
                try await Self.remove(attachment, plan: plan, host: host, links: true, interfaceElement: true, portElement: true)
            }
            do {
                try await removal.value
                slots.release(slot)
                ports.release(port)
            } catch let cleanup {
                // Keep the slot and port out of circulation: what is left of them is removed
                // at the next prepare(keeping:).
                logger.error(
                    "could not roll back a failed network attachment; its address and port stay reserved",
                    metadata: metadata(attachment).merging(["error": "\(cleanup)"]) { $1 })
            }
            throw error
        }
        return attachment
    }

    // MARK: Pool

    /// Starts a refill after `delay` when the pool is short and none runs.
    private func scheduleRefill(after delay: Duration) {
        guard prepared, pool.beginRefill() else { return }
        // Owned through the pool's `refilling` mark: it ends by itself once the pool is full,
        // making one more failed, or the network was torn down; ``waitForPool()`` waits for it.
        Task { [weak self] in
            if delay > .zero { try? await Task.sleep(for: delay) }
            await self?.refillPool()
        }
    }

    /// Makes ready attachments one turn each, so that other operations wait at most for one.
    private func refillPool() async {
        while true {
            await acquire()
            refillHoldsTurn = true
            let more = await makeReady()
            refillHoldsTurn = false
            release()
            if !more { break }
        }
        pool.endRefill()
        let waiters = poolWaiters
        poolWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// Makes one more ready attachment; false when the refill should stop.
    private func makeReady() async -> Bool {
        guard prepared, pool.shortfall > 0 else { return false }
        // A full subnet or port range is no failure: the pool waits for a detach.
        guard !slots.isExhausted, !ports.isExhausted else {
            logger.debug("network pool short: no free address or host port", metadata: ["network.pooled": "\(pool.ready.count)"])
            return false
        }
        let attachment: NetworkAttachment
        do {
            attachment = try await make(id: "")
        } catch {
            // Until the next take or detach, attaches make their own.
            logger.warning(
                "cannot make a pooled network attachment; the pool stays short", metadata: ["network.pooled": "\(pool.ready.count)", "error": "\(error)"])
            return false
        }
        guard pool.add(attachment) else {
            // Cannot happen (the turn is the refill's, and takes only shrink the pool); if it
            // did, the attachment must not stay plumbed and unaccounted for.
            try? await Self.remove(attachment, plan: plan, host: host, links: true, interfaceElement: true, portElement: true)
            if let slot = plan.slot(ofName: attachment.hostInterface) { slots.release(slot) }
            ports.release(attachment.hostPort)
            return false
        }
        logger.debug("pooled network attachment ready", metadata: metadata(attachment))
        return true
    }

    /// The slot is free, so whatever carries its name is a leftover (a crash between creating
    /// and recording): remove it rather than fail. Runs before ``plumb(_:)`` so that a refusal
    /// here (an interface of that name that is not a veth) never reaches the rollback, which
    /// would delete it.
    private func removeLeftovers(of attachment: NetworkAttachment) async throws {
        let name = attachment.hostInterface
        guard host.interfaceExists(name) || host.namespaceExists(name) else { return }
        logger.warning("removing a leftover veth or namespace of a free slot", metadata: ["network.interface": "\(name)"])
        try await removeOurs(only: [name])
    }

    /// Creates the attachment's pieces; the elements come first, so the veth never exists
    /// without the table's rules applying to it.
    private func plumb(_ attachment: NetworkAttachment) async throws {
        let name = attachment.hostInterface
        try await host.nftScript(
            NetworkRuleset.addElements(plan, attachment), purpose: "adding \(name) and host port \(attachment.hostPort) to the nftables table")
        try injectedFailure(after: .elements)
        try await host.ipBatch(
            [
                "netns add \(name)",
                "link add \(name) type veth peer name eth0 netns \(name)",
                "address add \(attachment.gatewayAddress)/30 dev \(name)",
                "link set dev \(name) up",
            ], purpose: "creating the namespace and veth \(name)")
        host.disableIPv6(on: name)
        try injectedFailure(after: .hostSide)
        try await host.ipBatch(
            [
                "address add \(attachment.containerAddress)/30 dev eth0",
                "link set dev eth0 up",
                "link set dev lo up",
                "route add default via \(attachment.gatewayAddress) dev eth0",
            ], namespace: name, purpose: "configuring eth0 and lo in namespace \(name)")
        try injectedFailure(after: .containerSide)
    }

    /// Removes a container's namespace, veth and elements, and frees its address and port.
    ///
    /// Idempotent: what is already gone is skipped, and an attachment this network no longer
    /// tracks (a stale one, or detached before) has only what nobody else uses removed. A
    /// failure leaves the attachment tracked, so the call can be repeated.
    public func detach(_ attachment: NetworkAttachment) async throws {
        await acquire()
        defer { release() }

        let slot = try plan.checkedSlot(of: attachment)
        let isCurrent = current[attachment.id] == attachment
        // A stale attachment (an old record's) may name what is now another container's or the pool's.
        let others = current.values.filter { $0 != attachment } + pool.ready
        let nameInUse = others.contains { $0.hostInterface == attachment.hostInterface }
        let portInUse = others.contains { $0.hostPort == attachment.hostPort }
        try await Self.remove(
            attachment, plan: plan, host: host, links: !nameInUse,
            interfaceElement: prepared && !nameInUse, portElement: prepared && !portInUse)
        if isCurrent {
            current[attachment.id] = nil
            slots.release(slot)
            ports.release(attachment.hostPort)
            logger.info("container network detached", metadata: metadata(attachment))
        }
        // A refill that stopped for want of a free address or port may go on now.
        scheduleRefill(after: .zero)
    }

    /// Removes everything of ours from the host: every namespace and veth named like ours,
    /// tracked, pooled or neither, and the table. The network must be prepared again before the
    /// next attach; a refill still under way then stops without making anything.
    public func teardown() async throws {
        await acquire()
        defer { release() }

        _ = pool.drain()
        try await removeOurs(except: [])
        try await host.nftScript(NetworkRuleset.deleteTable(plan), purpose: "deleting the nftables table \(plan.config.tableName)")
        current = [:]
        slots = RoundRobinAllocator(slots.range)
        ports = RoundRobinAllocator(ports.range)
        prepared = false
        logger.info("container network torn down", metadata: ["network.table": "\(plan.config.tableName)"])
    }

    // MARK: Removal

    /// Deletes veths and namespaces named like ours: all of them but `except`, or only `only`.
    /// Interfaces are deleted one by one, checking first, because deleting one end of a veth
    /// pair also deletes the other; an interface named like ours that is not a veth is never
    /// touched.
    private func removeOurs(except kept: Set<String> = [], only: Set<String>? = nil) async throws {
        func selected(_ name: String) -> Bool {
            guard plan.slot(ofName: name) != nil, !kept.contains(name) else { return false }
            return only?.contains(name) ?? true
        }
        let candidates = host.interfaceNames().filter(selected)
        if !candidates.isEmpty {
            let kinds = Dictionary(try await host.links().map { ($0.ifname, $0.kind) }) { first, _ in first }
            for name in candidates.sorted() where host.interfaceExists(name) {
                guard kinds[name] == "veth" else {
                    logger.warning(
                        "not removing an interface named like ours that is not a veth",
                        metadata: ["network.interface": "\(name)", "network.kind": "\(kinds[name].flatMap { $0 } ?? "unknown")"])
                    if only != nil {
                        throw ContainerError(
                            .other, "interface \(name) exists and is not a veth of ours; remove it or choose another interface prefix")
                    }
                    continue
                }
                logger.info("removing a veth of ours", metadata: ["network.interface": "\(name)"])
                try await host.ipBatch(["link delete dev \(name)"], purpose: "removing the veth \(name)")
            }
        }
        for name in host.namespaceNames().filter(selected).sorted() where host.namespaceExists(name) {
            logger.info("removing a network namespace of ours", metadata: ["network.namespace": "\(name)"])
            try await host.ipBatch(["netns delete \(name)"], purpose: "removing the network namespace \(name)")
        }
    }

    // MARK: Helpers

    /// Makes ``attach(id:)`` fail right after `step` (tests of the rollback).
    func failAttach(after step: AttachStep?) {
        failAfter = step
    }

    private func injectedFailure(after step: AttachStep) throws {
        if failAfter == step {
            throw ContainerError(.other, "injected failure after \(step)")
        }
    }

    private func metadata(_ attachment: NetworkAttachment) -> Logger.Metadata {
        [
            "container.id": "\(attachment.id)", "network.interface": "\(attachment.hostInterface)",
            "network.address": "\(attachment.containerAddress)", "network.host_port": "\(attachment.hostPort)",
        ]
    }

    /// Waits for the operation before to finish (first come, first served).
    private func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the turn to the next waiting operation.
    private func release() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
