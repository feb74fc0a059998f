import Foundation
import Testing

@testable import Containers

/// The network pool's bookkeeping: what is ready, what is missing, one refill at a time. No root.
@Suite("Container network: pool bookkeeping")
struct NetworkPoolTests {
    static let plan: NetworkPlan = {
        // The defaults are valid (checked in NetworkUnitTests).
        try! NetworkPlan(ContainerNetworkConfig(poolSize: 2))
    }()

    static func made(slot: Int) -> NetworkAttachment {
        plan.attachment(id: "", slot: slot, hostPort: 61000 + slot)
    }

    @Test("ready attachments are handed out oldest first, each to one container, never twice")
    func takeOrder() {
        var pool = NetworkPool(target: 2)
        let fromEmpty = pool.take(for: "a")
        #expect(fromEmpty == nil)
        for slot in [3, 4] {
            let added = pool.add(Self.made(slot: slot))
            #expect(added)
        }
        let first = pool.take(for: "a")
        #expect(first?.id == "a")
        #expect(first?.hostInterface == "cfl3")
        #expect(first?.hostPort == 61003)
        let second = pool.take(for: "b")
        #expect(second?.id == "b")
        #expect(second?.hostInterface == "cfl4")
        let third = pool.take(for: "c")
        #expect(third == nil)
        #expect(pool.ready.isEmpty)
        #expect(!pool.holds(interface: "cfl3"))
    }

    @Test("the shortfall counts what is missing; a full pool or a name already in refuses more")
    func shortfall() {
        var pool = NetworkPool(target: 2)
        #expect(pool.shortfall == 2)
        var added = pool.add(Self.made(slot: 0))
        #expect(added)
        #expect(pool.shortfall == 1)
        added = pool.add(Self.made(slot: 0))
        #expect(!added, "the same name twice")
        added = pool.add(Self.made(slot: 1))
        #expect(added)
        #expect(pool.shortfall == 0)
        added = pool.add(Self.made(slot: 2))
        #expect(!added, "beyond the target")
        #expect(pool.ready.map(\.hostInterface) == ["cfl0", "cfl1"])
        _ = pool.take(for: "x")
        #expect(pool.shortfall == 1)

        var none = NetworkPool(target: 0)
        #expect(none.shortfall == 0)
        added = none.add(Self.made(slot: 0))
        #expect(!added)
        let refill = none.beginRefill()
        #expect(!refill)
        #expect(NetworkPool(target: -3).target == 0)
    }

    @Test("what is added keeps no container id")
    func addedHasNoID() {
        var pool = NetworkPool(target: 1)
        var attachment = Self.made(slot: 5)
        attachment.id = "left-over-id"
        let added = pool.add(attachment)
        #expect(added)
        #expect(pool.ready.first?.id == "")
        #expect(pool.holds(interface: "cfl5"))
    }

    @Test("one refill at a time, and only when something is missing")
    func refillMarks() {
        var pool = NetworkPool(target: 1)
        var began = pool.beginRefill()
        #expect(began)
        #expect(pool.refilling)
        began = pool.beginRefill()
        #expect(!began, "a second refill while one runs")
        let added = pool.add(Self.made(slot: 0))
        #expect(added)
        pool.endRefill()
        #expect(!pool.refilling)
        began = pool.beginRefill()
        #expect(!began, "nothing is missing")
        _ = pool.take(for: "a")
        began = pool.beginRefill()
        #expect(began)
    }

    @Test("drain forgets every ready attachment and returns them; a refill under way stays marked")
    func drain() {
        var pool = NetworkPool(target: 3)
        let began = pool.beginRefill()
        #expect(began)
        for slot in 0..<3 {
            let added = pool.add(Self.made(slot: slot))
            #expect(added)
        }
        let drained = pool.drain()
        #expect(drained.map(\.hostInterface) == ["cfl0", "cfl1", "cfl2"])
        #expect(pool.ready.isEmpty)
        #expect(pool.shortfall == 3)
        #expect(pool.refilling, "the running refill still owns the mark and clears it when it ends")
        let again = pool.drain()
        #expect(again.isEmpty)
    }

    @Test("the pool size is checked with the rest of the configuration")
    func sizeValidation() throws {
        try ContainerNetworkConfig(poolSize: 0).validate()
        try ContainerNetworkConfig(poolSize: NetworkPlan.maxPoolSize).validate()
        #expect(ContainerNetworkConfig().poolSize == 0)
        for bad in [-1, NetworkPlan.maxPoolSize + 1] {
            let error = #expect(throws: ContainerError.self) { try ContainerNetworkConfig(poolSize: bad).validate() }
            #expect(error?.kind == .invalidArgument)
            #expect(error?.message.contains("network pool size \(bad)") == true, "\(String(describing: error))")
        }
    }
}
