/// Hands out integers from a range, starting after the last one handed out.
///
/// Round robin rather than lowest-free on purpose: a freed address or host port stays unused as
/// long as possible, so a proxy still holding the old address, or a conntrack entry of the last
/// tenant, does not meet a new container at once.
struct RoundRobinAllocator: Sendable {
    let range: ClosedRange<Int>
    private(set) var used: Set<Int> = []
    private var next: Int

    init(_ range: ClosedRange<Int>) {
        self.range = range
        next = range.lowerBound
    }

    var capacity: Int { range.count }
    var isExhausted: Bool { used.count >= range.count }

    /// The next free value after the last one handed out, or nil when all are in use.
    mutating func allocate() -> Int? {
        guard !isExhausted else { return nil }
        var candidate = next
        while used.contains(candidate) {
            candidate = candidate == range.upperBound ? range.lowerBound : candidate + 1
        }
        used.insert(candidate)
        next = candidate == range.upperBound ? range.lowerBound : candidate + 1
        return candidate
    }

    /// Marks `value` as used (an adopted container's). Values outside the range are ignored:
    /// they can never be handed out anyway.
    mutating func reserve(_ value: Int) {
        if range.contains(value) { used.insert(value) }
    }

    mutating func release(_ value: Int) {
        used.remove(value)
    }

    /// Continue after the highest reserved value, so adopted values are not handed out again
    /// as soon as they are freed.
    mutating func resumeAfterUsed() {
        if let highest = used.max() {
            next = highest == range.upperBound ? range.lowerBound : highest + 1
        } else {
            next = range.lowerBound
        }
    }
}
