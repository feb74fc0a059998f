/// When a crashed instance may be restarted (CONTRACTS.md, Health checks and restarts).
///
/// The first `immediateRestarts` crashes restart at once; after that the wait starts at
/// `firstDelay` and doubles with every crash up to `maxDelay`; once an instance has crashed
/// `maxCrashes` times it is left crashed. An instance that stays up `resetAfter` seconds gets
/// its count reset. With the defaults: 3 × at once, then 30 s, 1, 2, 4, 8 min, then 16 min each.
public struct CrashBackoff: Sendable, Equatable {
    public var immediateRestarts: Int
    /// Seconds to wait after the first crash that is not restarted at once.
    public var firstDelay: Double
    /// Longest wait in seconds.
    public var maxDelay: Double
    /// Crash count at which restarts stop.
    public var maxCrashes: Int
    /// Seconds an instance must stay up for its crash count to go back to 0.
    public var resetAfter: Double

    public init(immediateRestarts: Int = 3, firstDelay: Double = 30, maxDelay: Double = 16 * 60,
                maxCrashes: Int = 200, resetAfter: Double = 5 * 60) {
        self.immediateRestarts = immediateRestarts
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
        self.maxCrashes = maxCrashes
        self.resetAfter = resetAfter
    }

    /// Seconds to wait after the crash that brought the count to `crashCount` before restarting;
    /// nil when the instance has crashed too often to be restarted again.
    public func delay(afterCrashes crashCount: Int) -> Double? {
        let count = max(crashCount, 1)
        guard count < maxCrashes else { return nil }
        guard count > immediateRestarts else { return 0 }
        // Doubling stops long before the exponent could overflow a Double.
        let doublings = min(count - immediateRestarts - 1, 62)
        return min(firstDelay * Double(1 << doublings), maxDelay)
    }
}
