/// How a route's instances share its requests.
public enum BalancingStrategy: String, Sendable, CaseIterable {
    /// Each instance in turn (the default, as gorouter).
    case roundRobin = "round-robin"
    /// The instance with the fewest requests in flight; ties go round-robin.
    case leastConnections = "least-connections"
}

/// The instances one request has already tried (at most `RetryPolicy.maxAttempts`).
struct TriedBackends: Sendable {
    private var ids: (Int, Int, Int, Int) = (0, 0, 0, 0)
    private(set) var count = 0

    mutating func insert(_ id: Int) {
        switch count {
        case 0: ids.0 = id
        case 1: ids.1 = id
        case 2: ids.2 = id
        case 3: ids.3 = id
        default: return
        }
        count += 1
    }

    @inline(__always)
    func contains(_ id: Int) -> Bool {
        count > 0 && (ids.0 == id || (count > 1 && (ids.1 == id || (count > 2 && (ids.2 == id || (count > 3 && ids.3 == id))))))
    }
}

/// Picks an instance of a route. Benched instances are skipped while another can serve; when
/// all are benched the request still gets one (as gorouter does), since refusing would turn a
/// brief outage into 30 seconds of 503s. Instances at the per-backend cap are never picked.
struct Balancer: Sendable {
    var strategy: BalancingStrategy
    /// Requests in flight per instance beyond which it gets no more (0 = no cap).
    var maxInFlightPerBackend: Int

    /// An instance of `route` not in `tried`, or nil when none can take the request.
    func pick(_ route: Route, now: Int64, excluding tried: TriedBackends) -> Backend? {
        let backends = route.backends
        let n = backends.count
        guard n > 0 else { return nil }
        let start = n == 1 ? 0 : route.cursor.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
        var fallback: Backend?
        var best: Backend?
        var bestLoad = Int.max
        for k in 0..<n {
            let backend = backends[(start &+ k) % n]
            if tried.contains(backend.id) { continue }
            let load = (maxInFlightPerBackend > 0 || strategy == .leastConnections)
                ? backend.inFlight.load(ordering: .relaxed) : 0
            if maxInFlightPerBackend > 0 && load >= maxInFlightPerBackend { continue }
            if backend.isBenched(now: now) {
                if fallback == nil { fallback = backend }
                continue
            }
            if strategy == .roundRobin { return backend }
            if load < bestLoad {
                best = backend
                bestLoad = load
            }
        }
        return best ?? fallback
    }

    /// Whether some instance could take a request if it were not at the cap (503 wording).
    func allAtCapacity(_ route: Route) -> Bool {
        guard maxInFlightPerBackend > 0, !route.backends.isEmpty else { return false }
        return route.backends.allSatisfy { $0.inFlight.load(ordering: .relaxed) >= maxInFlightPerBackend }
    }
}
