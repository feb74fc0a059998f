import Foundation
import Testing

@testable import Containers

/// Container networking on the real host: namespaces, veths and an nftables table, each test
/// with its own table, prefix and subnet. These need root and FAIL (never skip) without it.
@Suite("Container network (needs root)", .serialized)
struct NetworkIntegrationTests {
    /// Every rule of the table, checked with real connections.
    @Test("root: containers reach nothing of the host or each other; host ports and outbound NAT work")
    func isolation() async throws {
        try await NetworkLab.with { lab in
            try await lab.createOutside()
            let network = try lab.network(lab.config())
            try await network.prepare(keeping: [])
            let a = try await network.attach(id: "container-a")
            let b = try await network.attach(id: "container-b")
            #expect(a.containerAddress != b.containerAddress)
            #expect(a.hostPort != b.hostPort)
            #expect(a.namespacePath == "/var/run/netns/\(a.namespaceName)")
            #expect(FileManager.default.fileExists(atPath: a.namespacePath))
            #expect(try await lab.interfaceElements() == [a.hostInterface, b.hostInterface].sorted())
            #expect(try await lab.portElements() == [a.hostPort, b.hostPort].sorted())
            #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8).hasPrefix("1"))

            _ = try lab.startServer("A", in: a.namespaceName, port: a.containerPort)
            _ = try lab.startServer("B", in: b.namespaceName, port: b.containerPort)
            let hostPort = try lab.startServer("HOST", in: nil)
            let outsidePort = try lab.startServer("OUTSIDE", in: lab.outsideNamespace)
            // An outside server on B's host port number: connections to another host's port in
            // the range must not be redirected to a local container.
            _ = try lab.startServer("REMOTE", in: lab.outsideNamespace, port: b.hostPort)

            // The host reaches containers by address and through host ports on its addresses.
            #expect(try await lab.probe(from: nil, a.containerAddress, 8080).server == "A")
            #expect(try await lab.probe(from: nil, lab.hostAddress, a.hostPort).server == "A")
            #expect(try await lab.probe(from: nil, lab.hostAddress, b.hostPort).server == "B")
            #expect(try await lab.probe(from: nil, a.gatewayAddress, b.hostPort).server == "B")
            // Loopback is not forwarded (documented limitation: dial the container address).
            #expect(try await lab.probe(from: nil, "127.0.0.1", a.hostPort).server != "A")
            #expect(try await lab.probe(from: nil, lab.outsideAddress, b.hostPort).server == "REMOTE")
            // The host listener is up (control for the blocked probes below).
            #expect(try await lab.probe(from: nil, lab.hostAddress, hostPort).server == "HOST")

            // A container reaches no host service, on its gateway or any other host address.
            let toGateway = try await lab.probe(from: a.namespaceName, a.gatewayAddress, hostPort)
            #expect(toGateway.isBlocked, "container -> gateway listener: \(toGateway)")
            let toHost = try await lab.probe(from: a.namespaceName, lab.hostAddress, hostPort)
            #expect(toHost.isBlocked, "container -> host address listener: \(toHost)")
            let toOutsideSide = try await lab.probe(from: a.namespaceName, lab.outsideHostAddress, hostPort)
            #expect(toOutsideSide.isBlocked, "container -> another host interface: \(toOutsideSide)")

            // A container reaches no other container: by address, or by host port on any address.
            let direct = try await lab.probe(from: a.namespaceName, b.containerAddress, 8080)
            #expect(direct.isBlocked, "A -> B address: \(direct)")
            let viaHostAddress = try await lab.probe(from: a.namespaceName, lab.hostAddress, b.hostPort)
            #expect(viaHostAddress.isBlocked, "A -> host address : B's port: \(viaHostAddress)")
            let viaGateway = try await lab.probe(from: a.namespaceName, a.gatewayAddress, b.hostPort)
            #expect(viaGateway.isBlocked, "A -> own gateway : B's port: \(viaGateway)")
            let viaBGateway = try await lab.probe(from: a.namespaceName, b.gatewayAddress, b.hostPort)
            #expect(viaBGateway.isBlocked, "A -> B's gateway : B's port: \(viaBGateway)")

            // Outbound works, masqueraded behind the host.
            let out = try await lab.probe(from: a.namespaceName, lab.outsideAddress, outsidePort)
            #expect(out.server == "OUTSIDE", "container -> outside: \(out)")
            #expect(out.peer == lab.outsideHostAddress, "outside saw \(out.peer ?? "-") instead of the host's address")

            // From elsewhere: the host address and host port reach the container; the container
            // address itself does not, even with a route to it.
            let fromOutside = try await lab.probe(from: lab.outsideNamespace, lab.outsideHostAddress, a.hostPort)
            #expect(fromOutside.server == "A", "outside -> host:port: \(fromOutside)")
            let outsideDirect = try await lab.probe(from: lab.outsideNamespace, a.containerAddress, 8080)
            #expect(outsideDirect.isBlocked, "outside -> container address: \(outsideDirect)")

            // The host side of a container's veth carries no IPv6 address.
            let v6 = try await NetworkLab.run(NetworkLab.ip, ["-j", "-6", "address", "show", "dev", a.hostInterface])
            #expect(!String(decoding: v6, as: UTF8.self).contains("local"), "IPv6 on \(a.hostInterface): \(String(decoding: v6, as: UTF8.self))")

            try await network.detach(a)
            try await network.detach(b)
            #expect(try await lab.ourLinks().isEmpty)
            #expect(try await lab.ourNamespaces().isEmpty)
            #expect(try await lab.interfaceElements().isEmpty)
            #expect(try await lab.portElements().isEmpty)
            #expect(await network.attachments.isEmpty)
            try await network.teardown()
            #expect(try await !NetworkLab.nftTables().contains(lab.table))
        }
    }

    @Test("root: with allowOutbound=false a container reaches nothing outside, but its host port still works")
    func outboundDisabled() async throws {
        try await NetworkLab.with { lab in
            try await lab.createOutside()
            let network = try lab.network(lab.config(allowOutbound: false))
            try await network.prepare(keeping: [])
            let a = try await network.attach(id: "closed")
            _ = try lab.startServer("A", in: a.namespaceName, port: 8080)
            let outsidePort = try lab.startServer("OUTSIDE", in: lab.outsideNamespace)

            #expect(try await lab.probe(from: nil, lab.outsideAddress, outsidePort).server == "OUTSIDE")
            let out = try await lab.probe(from: a.namespaceName, lab.outsideAddress, outsidePort)
            #expect(out.isBlocked, "container -> outside with allowOutbound=false: \(out)")
            // Inbound through the host port is unaffected: its replies are established traffic.
            let inbound = try await lab.probe(from: lab.outsideNamespace, lab.outsideHostAddress, a.hostPort)
            #expect(inbound.server == "A", "outside -> host:port: \(inbound)")
            #expect(try await lab.probe(from: nil, a.containerAddress, 8080).server == "A")
            try await network.teardown()
        }
    }

    @Test("root: prepare refuses a subnet overlapping a host route or the name server, creating nothing")
    func overlapRefused() async throws {
        try await NetworkLab.with { lab in
            let routes = try await NetworkLab.hostRoutes()
            let route = try #require(
                routes.first { $0.prefixLength > 0 && !$0.address.description.hasPrefix("127.") },
                "the host has no non-loopback route to test against")
            let length = min(max(route.prefixLength, NetworkPlan.shortestPrefix), 30)
            let overlapping = IPv4Network(address: route.address, prefixLength: length)
            let network = try lab.network(lab.config(subnet: overlapping))
            let error = await #expect(throws: ContainerError.self) { try await network.prepare(keeping: []) }
            #expect(error?.kind == .invalidArgument)
            #expect(error?.message.contains("overlaps the host's") == true, "\(String(describing: error))")
            #expect(error?.message.contains(overlapping.description) == true)

            let resolvConf = try String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)
            let server = try #require(HostNetworking.nameservers(resolvConf: resolvConf).first, "no IPv4 name server in /etc/resolv.conf")
            let aroundServer = IPv4Network(address: server, prefixLength: 30)
            try #require(!routes.contains { $0.overlaps(aroundServer) }, "a route already covers \(aroundServer)")
            let second = try lab.network(lab.config(subnet: aroundServer))
            let resolverError = await #expect(throws: ContainerError.self) { try await second.prepare(keeping: []) }
            #expect(resolverError?.message.contains("name server \(server)") == true, "\(String(describing: resolverError))")

            #expect(try await !NetworkLab.nftTables().contains(lab.table))
            await #expect(throws: ContainerError.self) { _ = try await network.attach(id: "never") }
        }
    }

    @Test("root: prepare(keeping:) keeps an adopted attachment working and removes every other netns and veth of ours")
    func prepareKeeping() async throws {
        try await NetworkLab.with { lab in
            let config = lab.config()
            let first = try lab.network(config)
            try await first.prepare(keeping: [])
            let kept = try await first.attach(id: "kept")
            let dropped = try await first.attach(id: "dropped")
            // Leftovers of a crash: a namespace with its veth, a bare pair in the host, a lone
            // namespace; and names that are not ours.
            let p = lab.prefix
            try await lab.addNamespace("\(p)77")
            try await lab.addLink("\(p)77", ["link", "add", "\(p)77", "type", "veth", "peer", "name", "eth0", "netns", "\(p)77"])
            try await lab.addLink("\(p)78", ["link", "add", "\(p)78", "type", "veth", "peer", "name", "\(p)79"])
            try await lab.addNamespace("\(p)80")
            try await lab.addNamespace("\(p)x1")
            try await lab.addLink("\(p)x2", ["link", "add", "\(p)x2", "type", "veth", "peer", "name", "\(p)x3"])

            // The agent restarts: a new instance adopts only `kept`.
            let second = try lab.network(config)
            try await second.prepare(keeping: [kept])
            #expect(try await lab.ourLinks() == [kept.hostInterface])
            #expect(try await lab.ourNamespaces() == [kept.namespaceName])
            #expect(try await lab.interfaceElements() == [kept.hostInterface])
            #expect(try await lab.portElements() == [kept.hostPort])
            #expect(try await NetworkLab.namespaces().contains("\(p)x1"))
            #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(p)x2"))
            #expect(await second.attachments == [kept])

            _ = try lab.startServer("KEPT", in: kept.namespaceName, port: 8080)
            #expect(try await lab.probe(from: nil, kept.containerAddress, 8080).server == "KEPT")
            #expect(try await lab.probe(from: nil, lab.hostAddress, kept.hostPort).server == "KEPT")
            #expect(try await lab.probe(from: nil, lab.hostAddress, dropped.hostPort).server == nil)

            // New attachments do not collide with the adopted one and are confined from it.
            let fresh = try await second.attach(id: "fresh")
            #expect(fresh.containerAddress != kept.containerAddress)
            #expect(fresh.hostPort != kept.hostPort)
            let sideways = try await lab.probe(from: fresh.namespaceName, kept.containerAddress, 8080)
            #expect(sideways.isBlocked, "fresh -> kept: \(sideways)")

            // A kept attachment this configuration could not have made is refused.
            var forged = kept
            forged.hostInterface = "eth0"
            await #expect(throws: ContainerError.self) { try await second.prepare(keeping: [forged]) }

            try await second.teardown()
            #expect(try await lab.ourLinks().isEmpty)
            #expect(try await lab.ourNamespaces().isEmpty)
            #expect(try await !NetworkLab.nftTables().contains(lab.table))
        }
    }

    @Test("root: a failure part-way through attach removes what it created")
    func attachRollsBack() async throws {
        try await NetworkLab.with { lab in
            let network = try lab.network(lab.config())
            try await network.prepare(keeping: [])
            for step in [ContainerNetwork.AttachStep.elements, .hostSide, .containerSide] {
                await network.failAttach(after: step)
                await #expect(throws: ContainerError.self, "failure after \(step)") { _ = try await network.attach(id: "doomed") }
                #expect(try await lab.ourLinks().isEmpty, "after \(step)")
                #expect(try await lab.ourNamespaces().isEmpty, "after \(step)")
                #expect(try await lab.interfaceElements().isEmpty, "after \(step)")
                #expect(try await lab.portElements().isEmpty, "after \(step)")
                #expect(await network.attachments.isEmpty)
            }
            await network.failAttach(after: nil)
            let ok = try await network.attach(id: "doomed")
            _ = try lab.startServer("OK", in: ok.namespaceName, port: 8080)
            #expect(try await lab.probe(from: nil, lab.hostAddress, ok.hostPort).server == "OK")
            try await network.teardown()
        }
    }

    @Test("root: an exhausted subnet or port range is a clear error and leaves nothing behind")
    func exhaustion() async throws {
        try await NetworkLab.with { lab in
            // Two /30 slots, plenty of ports.
            let small = try lab.network(lab.config(subnet: IPv4Network(address: lab.subnet.address, prefixLength: 29)))
            try await small.prepare(keeping: [])
            let one = try await small.attach(id: "one")
            _ = try await small.attach(id: "two")
            let full = await #expect(throws: ContainerError.self) { _ = try await small.attach(id: "three") }
            #expect(full?.message.contains("no free container address") == true, "\(String(describing: full))")
            #expect(try await lab.ourLinks().count == 2)
            try await small.detach(one)
            let three = try await small.attach(id: "three")
            #expect(three.containerAddress == one.containerAddress)  // the only free slot
            try await small.teardown()

            // Four slots, two ports.
            let ports = lab.portBase...(lab.portBase + 1)
            let narrow = try lab.network(lab.config(subnet: IPv4Network(address: lab.subnet.address, prefixLength: 28), ports: ports))
            try await narrow.prepare(keeping: [])
            _ = try await narrow.attach(id: "one")
            _ = try await narrow.attach(id: "two")
            let noPort = await #expect(throws: ContainerError.self) { _ = try await narrow.attach(id: "three") }
            #expect(noPort?.message.contains("no free host port") == true, "\(String(describing: noPort))")
            #expect(try await lab.ourLinks().count == 2)
            #expect(await narrow.attachments.map(\.id) == ["one", "two"])
            try await narrow.teardown()
        }
    }

    @Test("root: detach is idempotent, attach checks its preconditions, teardown leaves nothing")
    func lifecycle() async throws {
        try await NetworkLab.with { lab in
            let network = try lab.network(lab.config())
            let early = await #expect(throws: ContainerError.self) { _ = try await network.attach(id: "early") }
            #expect(early?.message.contains("prepare") == true)
            try await network.prepare(keeping: [])
            let a = try await network.attach(id: "a")
            let duplicate = await #expect(throws: ContainerError.self) { _ = try await network.attach(id: "a") }
            #expect(duplicate?.message.contains("already has a network attachment") == true)
            let b = try await network.attach(id: "b")
            #expect(await network.attachments.map(\.id) == ["a", "b"])

            try await network.detach(a)
            try await network.detach(a)  // again: nothing left to do, and b is untouched
            #expect(try await lab.ourLinks() == [b.hostInterface])
            #expect(try await lab.interfaceElements() == [b.hostInterface])
            #expect(try await lab.portElements() == [b.hostPort])

            var foreign = a
            foreign.namespaceName = "other"
            await #expect(throws: ContainerError.self) { try await network.detach(foreign) }

            try await network.teardown()
            try await network.teardown()  // again
            try await network.detach(b)  // after teardown: nothing left to do
            #expect(try await lab.ourLinks().isEmpty)
            #expect(try await lab.ourNamespaces().isEmpty)
            #expect(try await !NetworkLab.nftTables().contains(lab.table))
            #expect(await network.attachments.isEmpty)
        }
    }

    @Test("root: attach replaces a leftover veth of its free slot but never deletes an interface that is not a veth")
    func attachLeftovers() async throws {
        try await NetworkLab.with { lab in
            let network = try lab.network(lab.config())
            try await network.prepare(keeping: [])
            // Round robin starts at slot 0 after an empty prepare: leave a crash's remains there.
            let p = lab.prefix
            try await lab.addNamespace("\(p)0")
            try await lab.addLink("\(p)0", ["link", "add", "\(p)0", "type", "veth", "peer", "name", "eth0", "netns", "\(p)0"])
            let a = try await network.attach(id: "a")
            #expect(a.hostInterface == "\(p)0")
            _ = try lab.startServer("A", in: a.namespaceName, port: 8080)
            #expect(try await lab.probe(from: nil, lab.hostAddress, a.hostPort).server == "A")

            // Slot 1 is taken by a bridge someone else made: refused, and the bridge survives.
            try await lab.addLink("\(p)1", ["link", "add", "\(p)1", "type", "bridge"])
            let refused = await #expect(throws: ContainerError.self) { _ = try await network.attach(id: "b") }
            #expect(refused?.message.contains("not a veth") == true, "\(String(describing: refused))")
            #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(p)1"))
            #expect(await network.attachments == [a])
            let c = try await network.attach(id: "c")
            #expect(c.hostInterface == "\(p)2")
            try await network.teardown()
            #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(p)1"))
        }
    }

    /// Prints p50/p90 of attach and detach over 20 each (20 attached at the peak).
    @Test("root: attach and detach time, p50 over 20")
    func timing() async throws {
        try await NetworkLab.with { lab in
            let network = try lab.network(lab.config())
            try await network.prepare(keeping: [])
            let clock = ContinuousClock()
            var attachTimes: [Duration] = []
            var detachTimes: [Duration] = []
            var attached: [NetworkAttachment] = []
            for index in 0..<20 {
                let start = clock.now
                attached.append(try await network.attach(id: "timed-\(index)"))
                attachTimes.append(clock.now - start)
            }
            #expect(try await lab.portElements().count == 20)
            for attachment in attached {
                let start = clock.now
                try await network.detach(attachment)
                detachTimes.append(clock.now - start)
            }
            try await network.teardown()
            func ms(_ d: Duration) -> Double {
                Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
            }
            func percentile(_ values: [Duration], _ p: Double) -> Double {
                let sorted = values.map(ms).sorted()
                return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
            }
            let line = String(
                format: "network timing (20 each): attach p50 %.1f ms p90 %.1f ms max %.1f ms; detach p50 %.1f ms p90 %.1f ms max %.1f ms",
                percentile(attachTimes, 0.5), percentile(attachTimes, 0.9), percentile(attachTimes, 1),
                percentile(detachTimes, 0.5), percentile(detachTimes, 0.9), percentile(detachTimes, 1))
            print(line)
            #expect(percentile(attachTimes, 0.5) < 500, "\(line)")
            #expect(percentile(detachTimes, 0.5) < 500, "\(line)")
        }
    }
}
