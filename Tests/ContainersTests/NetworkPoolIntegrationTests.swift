import Foundation
import Testing

@testable import Containers

/// The network pool on the real host: ready attachments are complete and clean, handed out
/// once, refilled, replaced after a restart and removed by teardown. Root; FAILS without it.
@Suite("Container network pool (needs root)", .serialized)
struct NetworkPoolIntegrationTests {
    /// A lab configuration with a pool.
    static func pooled(_ lab: NetworkLab, size: Int = 2, prefixLength: Int = 24) -> ContainerNetworkConfig {
        var config = lab.config(subnet: IPv4Network(address: lab.subnet.address, prefixLength: prefixLength))
        config.poolSize = size
        return config
    }

    /// What a namespace holds: its links, IPv4 addresses, routes and processes.
    struct Contents: Equatable {
        var links: [String]
        var addresses: [String]
        var routes: [String]
        var pids: [String]
    }

    static func contents(of namespace: String) async throws -> Contents {
        struct Link: Decodable { var ifname: String }
        struct Address: Decodable {
            var ifname: String
            var addr_info: [Info]
            struct Info: Decodable { var local: String; var prefixlen: Int }
        }
        struct Route: Decodable { var dst: String; var gateway: String?; var dev: String? }
        let links = try JSONDecoder().decode([Link].self, from: try await NetworkLab.run(NetworkLab.ip, ["-n", namespace, "-j", "link", "show"]))
        let addresses = try JSONDecoder().decode(
            [Address].self, from: try await NetworkLab.run(NetworkLab.ip, ["-n", namespace, "-j", "-4", "address", "show"]))
        let routes = try JSONDecoder().decode([Route].self, from: try await NetworkLab.run(NetworkLab.ip, ["-n", namespace, "-j", "-4", "route", "show"]))
        let pids = String(decoding: try await NetworkLab.run(NetworkLab.ip, ["netns", "pids", namespace]), as: UTF8.self)
        return Contents(
            links: links.map(\.ifname).sorted(),
            addresses: addresses.flatMap { a in a.addr_info.map { "\(a.ifname) \($0.local)/\($0.prefixlen)" } }.sorted(),
            routes: routes.map { "\($0.dst) via \($0.gateway ?? "-") dev \($0.dev ?? "-")" }.sorted(),
            pids: pids.split(separator: "\n").map(String.init))
    }

    /// A ready attachment holds exactly what attach makes: lo and eth0 up with the slot's
    /// address, the default route through its gateway, no process, no marker of anyone else.
    static func expectClean(_ attachment: NetworkAttachment, _ lab: NetworkLab, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let found = try await contents(of: attachment.namespaceName)
        let slotBase = try #require(IPv4Address(attachment.containerAddress), sourceLocation: sourceLocation).value - 2
        let expected = Contents(
            links: ["eth0", "lo"],
            addresses: ["eth0 \(attachment.containerAddress)/30", "lo 127.0.0.1/8"],
            routes: ["\(IPv4Address(slotBase))/30 via - dev eth0", "default via \(attachment.gatewayAddress) dev eth0"].sorted(),
            pids: [])
        #expect(found == expected, "pooled namespace \(attachment.namespaceName)", sourceLocation: sourceLocation)
        #expect(attachment.id.isEmpty, sourceLocation: sourceLocation)
    }

    /// Leaves a trace in a namespace that a fresh one would not have.
    static func mark(_ namespace: String) async throws {
        try await NetworkLab.run(NetworkLab.ip, ["-n", namespace, "address", "add", "127.0.0.9/8", "dev", "lo"])
    }

    @Test("root: ready attachments are complete and clean, handed out once, refilled after each take, and never come back")
    func takeAndRefill() async throws {
        try await NetworkLab.with { lab in
            // Four slots: the pool's two, and two containers at most besides.
            let network = try lab.network(Self.pooled(lab, prefixLength: 28))
            try await network.prepare(keeping: [])
            await network.waitForPool()
            let ready = await network.pooled
            #expect(ready.map(\.hostInterface) == ["\(lab.prefix)0", "\(lab.prefix)1"])
            #expect(try await lab.ourLinks().sorted() == ready.map(\.hostInterface))
            #expect(try await lab.ourNamespaces().sorted() == ready.map(\.namespaceName))
            // The table confines them before anyone has them.
            #expect(try await lab.interfaceElements() == ready.map(\.hostInterface))
            #expect(try await lab.portElements() == ready.map(\.hostPort).sorted())
            for attachment in ready { try await Self.expectClean(attachment, lab) }
            // Nothing answers on a ready attachment's host port.
            #expect(try await lab.probe(from: nil, lab.hostAddress, ready[0].hostPort).server == nil)

            // A take hands out the oldest, exactly as it was made, and the pool is refilled.
            let a = try await network.attach(id: "a")
            var expectedA = ready[0]
            expectedA.id = "a"
            #expect(a == expectedA)
            #expect(await network.attachments == [a])
            await network.waitForPool()
            #expect(await network.pooled.map(\.hostInterface) == ["\(lab.prefix)1", "\(lab.prefix)2"])
            _ = try lab.startServer("A", in: a.namespaceName, port: a.containerPort)
            #expect(try await lab.probe(from: nil, lab.hostAddress, a.hostPort).server == "A")
            #expect(try await lab.probe(from: nil, a.containerAddress, 8080).server == "A")
            let sideways = try await lab.probe(from: a.namespaceName, (await network.pooled)[0].containerAddress, 8080)
            #expect(sideways.isBlocked, "a -> a ready namespace: \(sideways)")
            // `a` leaves a trace in its namespace, then goes: the namespace goes with it.
            try await Self.mark(a.namespaceName)
            try await network.detach(a)
            #expect(!FileManager.default.fileExists(atPath: a.namespacePath))
            #expect(try await lab.probe(from: nil, lab.hostAddress, a.hostPort).server == nil)

            // Round robin comes back to a's slot: the pool gets a new namespace there, not a's.
            let b = try await network.attach(id: "b")
            await network.waitForPool()
            let c = try await network.attach(id: "c")
            await network.waitForPool()
            #expect(b.hostInterface == "\(lab.prefix)1" && c.hostInterface == "\(lab.prefix)2")
            let again = await network.pooled
            #expect(again.map(\.hostInterface) == ["\(lab.prefix)0", "\(lab.prefix)3"])
            for attachment in again {
                try await Self.expectClean(attachment, lab)
                #expect(attachment.hostPort != a.hostPort, "a's host port stays unused while others are free")
            }
            #expect(try await lab.interfaceElements() == ([b, c] + again).map(\.hostInterface).sorted())
            #expect(try await lab.portElements() == ([b, c] + again).map(\.hostPort).sorted())

            // The pool never costs a container its address: ready ones go first, then the
            // subnet is exhausted as without a pool.
            let d = try await network.attach(id: "d")
            let e = try await network.attach(id: "e")
            await network.waitForPool()
            #expect(Set([d, e].map(\.hostInterface)) == Set(again.map(\.hostInterface)))
            #expect(await network.pooled.isEmpty)
            let full = await #expect(throws: ContainerError.self) { _ = try await network.attach(id: "f") }
            #expect(full?.message.contains("no free container address") == true, "\(String(describing: full))")
            // A detach frees a slot, and the pool, short since it ran out, takes it.
            try await network.detach(d)
            await network.waitForPool()
            #expect(await network.pooled.map(\.hostInterface) == [d.hostInterface])

            try await network.teardown()
            #expect(await network.pooled.isEmpty)
            #expect(try await lab.ourLinks().isEmpty)
            #expect(try await lab.ourNamespaces().isEmpty)
            #expect(try await !NetworkLab.nftTables().contains(lab.table))
        }
    }

    @Test("root: after a restart the previous pool is removed and a new one made, adopted attachments kept; a stale attachment never removes a ready one")
    func restart() async throws {
        try await NetworkLab.with { lab in
            let config = Self.pooled(lab)
            let first = try lab.network(config)
            try await first.prepare(keeping: [])
            await first.waitForPool()
            let kept = try await first.attach(id: "kept")
            await first.waitForPool()
            let oldPool = await first.pooled
            #expect(oldPool.count == 2)
            for attachment in oldPool { try await Self.mark(attachment.namespaceName) }

            // The agent restarts and adopts `kept` only.
            let second = try lab.network(config)
            try await second.prepare(keeping: [kept])
            await second.waitForPool()
            let newPool = await second.pooled
            #expect(newPool.count == 2)
            #expect(!newPool.contains { $0.hostInterface == kept.hostInterface || $0.hostPort == kept.hostPort })
            for attachment in newPool { try await Self.expectClean(attachment, lab) }
            #expect(try await lab.ourLinks().sorted() == ([kept] + newPool).map(\.hostInterface).sorted())
            #expect(try await lab.ourNamespaces().sorted() == ([kept] + newPool).map(\.namespaceName).sorted())
            #expect(try await lab.interfaceElements() == ([kept] + newPool).map(\.hostInterface).sorted())
            #expect(try await lab.portElements() == ([kept] + newPool).map(\.hostPort).sorted())
            #expect(await second.attachments == [kept])
            _ = try lab.startServer("KEPT", in: kept.namespaceName, port: 8080)
            #expect(try await lab.probe(from: nil, lab.hostAddress, kept.hostPort).server == "KEPT")

            // An old record's attachment that names a ready one's slot: detaching it leaves the
            // ready one's namespace, veth and elements alone.
            var stale = newPool[0]
            stale.id = "stale"
            try await second.detach(stale)
            #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(stale.hostInterface)"))
            #expect(FileManager.default.fileExists(atPath: stale.namespacePath))
            #expect(try await lab.interfaceElements().contains(stale.hostInterface))
            #expect(try await lab.portElements().contains(stale.hostPort))
            #expect(await second.pooled == newPool)

            try await second.teardown()
            #expect(try await lab.ourLinks().isEmpty)
            #expect(try await lab.ourNamespaces().isEmpty)
        }
    }

    @Test("root: attaches racing the refill get distinct attachments, and everything adds up afterwards")
    func concurrentAttaches() async throws {
        try await NetworkLab.with { lab in
            let network = try lab.network(Self.pooled(lab))
            try await network.prepare(keeping: [])
            // The refill has just begun: some of these take ready ones, others make their own.
            let attached = try await withThrowingTaskGroup(of: NetworkAttachment.self) { group in
                for index in 0..<4 { group.addTask { try await network.attach(id: "racer-\(index)") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(attached.map(\.hostInterface)).count == 4)
            #expect(Set(attached.map(\.hostPort)).count == 4)
            await network.waitForPool()
            let ready = await network.pooled
            #expect(ready.count == 2)
            let all = (attached + ready).map(\.hostInterface).sorted()
            #expect(Set(all).count == 6)
            #expect(try await lab.ourLinks().sorted() == all)
            #expect(try await lab.interfaceElements() == all)
            #expect(try await lab.portElements() == (attached + ready).map(\.hostPort).sorted())
            for attachment in attached {
                _ = try lab.startServer(attachment.id, in: attachment.namespaceName, port: 8080)
                #expect(try await lab.probe(from: nil, lab.hostAddress, attachment.hostPort).server == attachment.id)
            }
            for attachment in attached { try await network.detach(attachment) }
            await network.waitForPool()
            #expect(try await lab.ourLinks().sorted() == (await network.pooled).map(\.hostInterface))
            try await network.teardown()
        }
    }
}
