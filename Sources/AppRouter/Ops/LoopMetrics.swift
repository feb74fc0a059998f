/// One event loop's counters: plain integers touched only on their loop (no atomics, no locks
/// on the hot path); `/metrics` gathers a copy from every loop and adds them up.
struct LoopMetrics: Sendable {
    /// Upper bounds (seconds) of the request duration histogram.
    static let durationBounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    static let failureKinds = ["connect", "reset_before_write", "closed_before_response", "response_timeout",
                               "invalid_response", "closed_during_response"]

    /// Requests by status code (index = code, 0...599).
    var requestsByStatus = [Int](repeating: 0, count: 600)
    /// Cumulative-free bucket counts; the last slot is +Inf.
    var durationBuckets = [Int](repeating: 0, count: durationBounds.count + 1)
    var durationSumNanoseconds: Int64 = 0
    var durationCount = 0
    var backendFailures = [Int](repeating: 0, count: failureKinds.count)
    var routerErrors = [Int](repeating: 0, count: RouterAnswer.Code.allCases.count)
    var benched = 0
    var upgrades = 0
    var rejectedConnections = 0

    @inline(__always)
    mutating func record(status: Int, durationNanoseconds: Int64) {
        if status >= 0 && status < 600 { requestsByStatus[status] += 1 }
        durationBuckets[Self.bucket(durationNanoseconds)] += 1
        durationSumNanoseconds &+= durationNanoseconds
        durationCount += 1
    }

    /// The histogram bucket of a duration (the bounds of `durationBounds`, as constants).
    @inline(__always)
    static func bucket(_ ns: Int64) -> Int {
        switch ns {
        case ...500_000: return 0
        case ...1_000_000: return 1
        case ...2_500_000: return 2
        case ...5_000_000: return 3
        case ...10_000_000: return 4
        case ...25_000_000: return 5
        case ...50_000_000: return 6
        case ...100_000_000: return 7
        case ...250_000_000: return 8
        case ...500_000_000: return 9
        case ...1_000_000_000: return 10
        case ...2_500_000_000: return 11
        case ...5_000_000_000: return 12
        case ...10_000_000_000: return 13
        case ...30_000_000_000: return 14
        case ...60_000_000_000: return 15
        default: return 16
        }
    }

    mutating func record(failure: BackendFailure) {
        if let index = Self.failureKinds.firstIndex(of: failure.metricLabel) { backendFailures[index] += 1 }
    }

    mutating func record(error code: RouterAnswer.Code) {
        if let index = RouterAnswer.Code.allCases.firstIndex(of: code) { routerErrors[index] += 1 }
    }

    /// Adds another loop's counters.
    mutating func add(_ other: LoopMetrics) {
        for i in requestsByStatus.indices { requestsByStatus[i] += other.requestsByStatus[i] }
        for i in durationBuckets.indices { durationBuckets[i] += other.durationBuckets[i] }
        durationSumNanoseconds += other.durationSumNanoseconds
        durationCount += other.durationCount
        for i in backendFailures.indices { backendFailures[i] += other.backendFailures[i] }
        for i in routerErrors.indices { routerErrors[i] += other.routerErrors[i] }
        benched += other.benched
        upgrades += other.upgrades
        rejectedConnections += other.rejectedConnections
    }
}
