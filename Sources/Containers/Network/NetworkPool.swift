/// The attachments ``ContainerNetwork`` keeps ready for containers it has not been asked for
/// yet: which are ready, how many are missing and whether a refill runs. Bookkeeping only;
/// the network runs the commands.
///
/// A ready attachment was made for the pool and never used. It is handed to one container and
/// never comes back: detaching a container removes its namespace and veth whether or not they
/// came from the pool, and the pool is refilled with new ones. So no container ever gets a
/// namespace, address or host port another container had while it was in the pool.
struct NetworkPool: Sendable {
    /// Attachments kept ready.
    let target: Int
    /// Ready attachments, oldest first; their `id` is empty until one is taken.
    private(set) var ready: [NetworkAttachment] = []
    /// Whether a refill is under way (at most one at a time).
    private(set) var refilling = false

    init(target: Int) {
        self.target = max(0, target)
    }

    /// How many attachments are missing to reach the target.
    var shortfall: Int { max(0, target - ready.count) }

    /// The oldest ready attachment, now container `id`'s; nil when none is ready.
    mutating func take(for id: String) -> NetworkAttachment? {
        guard !ready.isEmpty else { return nil }
        var attachment = ready.removeFirst()
        attachment.id = id
        return attachment
    }

    /// Adds a freshly made attachment; false (and nothing added) when the pool is full or
    /// already holds one of that name.
    mutating func add(_ attachment: NetworkAttachment) -> Bool {
        guard shortfall > 0, !holds(interface: attachment.hostInterface) else { return false }
        var ready = attachment
        ready.id = ""
        self.ready.append(ready)
        return true
    }

    /// Whether `name` is the interface (and namespace) of a ready attachment.
    func holds(interface name: String) -> Bool {
        ready.contains { $0.hostInterface == name }
    }

    /// Forgets every ready attachment and returns them (their owner removes them from the host).
    mutating func drain() -> [NetworkAttachment] {
        defer { ready = [] }
        return ready
    }

    /// Marks a refill as started when one is due: something is missing and none runs.
    mutating func beginRefill() -> Bool {
        guard shortfall > 0, !refilling else { return false }
        refilling = true
        return true
    }

    /// Marks the refill as over (the pool is full, or making one more failed).
    mutating func endRefill() {
        refilling = false
    }
}
