import Foundation
import Testing

@testable import Containers

/// Address math, configuration checks, allocation and the ruleset text: no root needed.
@Suite("Container network: pure parts")
struct NetworkUnitTests {
    @Test("IPv4 addresses and networks parse strictly")
    func parsing() throws {
        #expect(IPv4Address("10.254.0.2")?.description == "10.254.0.2")
        #expect(IPv4Address("255.255.255.255")?.value == UInt32.max)
        for bad in ["10.254.0", "10.254.0.256", "10.254.0.02", "10..0.1", "a.b.c.d", "1.2.3.4.5", "", " 1.2.3.4", "1.2.3.-4"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
        let net = try #require(IPv4Network("10.254.0.0/22"))
        #expect(net.lastAddress.description == "10.254.3.255")
        #expect(net.size == 1024)
        #expect(IPv4Network("10.254.0.1/22") == nil)  // host bits set
        #expect(IPv4Network("10.254.0.1/22", strict: false)?.description == "10.254.0.0/22")
        #expect(IPv4Network("10.254.0.7")?.prefixLength == 32)
        for bad in ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0.0/08x"] {
            #expect(IPv4Network(bad) == nil, "\(bad)")
        }
    }

    @Test("overlap is symmetric and exact at the edges")
    func overlap() throws {
        let subnet = try #require(IPv4Network("10.254.0.0/22"))
        #expect(subnet.overlaps(try #require(IPv4Network("10.0.0.0/8"))))
        #expect(try #require(IPv4Network("10.0.0.0/8")).overlaps(subnet))
        #expect(subnet.overlaps(try #require(IPv4Network("10.254.3.255"))))
        #expect(!subnet.overlaps(try #require(IPv4Network("10.254.4.0/24"))))
        #expect(!subnet.overlaps(try #require(IPv4Network("10.253.255.255"))))
        #expect(!subnet.overlaps(try #require(IPv4Network("10.255.255.53"))))  // this host's resolver
        #expect(subnet.contains(try #require(IPv4Address("10.254.1.2"))))
    }

    @Test("the defaults are valid and lay out /30 slots")
    func defaults() throws {
        let config = ContainerNetworkConfig()
        #expect(config.subnet == "10.254.0.0/22")
        #expect(config.hostPortRange == 61000...61999)
        #expect(config.allowOutbound)
        #expect(config.tableName == "cflike_dea")
        #expect(config.interfacePrefix == "cfl")
        #expect(config.containerPort == 8080)
        try config.validate()
        let plan = try NetworkPlan(config)
        #expect(plan.slotCount == 256)
        let last = plan.attachment(id: "x", slot: 255, hostPort: 61999)
        #expect(last.hostInterface == "cfl255")
        #expect(last.namespaceName == "cfl255")
        #expect(last.namespacePath == "/var/run/netns/cfl255")
        #expect(last.gatewayAddress == "10.254.3.253")
        #expect(last.containerAddress == "10.254.3.254")
        #expect(last.containerPort == 8080)
        #expect(try plan.checkedSlot(of: last) == 255)
        #expect(plan.slot(ofName: "cfl12") == 12)
        for notOurs in ["cfl", "cfltest1", "cfl012", "cfl1a", "cf12", "eth0", "cfl12345678"] {
            #expect(plan.slot(ofName: notOurs) == nil, "\(notOurs)")
        }
    }

    @Test("bad configurations are refused with a message naming the value")
    func validation() throws {
        func refused(_ config: ContainerNetworkConfig, mentioning text: String) {
            do {
                try config.validate()
                Issue.record("accepted \(config)")
            } catch let error as ContainerError {
                #expect(error.kind == .invalidArgument)
                #expect(error.message.contains(text), "\(error.message) should mention \(text)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        refused(ContainerNetworkConfig(subnet: "10.254.0.0"), mentioning: "prefix between")
        refused(ContainerNetworkConfig(subnet: "banana"), mentioning: "\"banana\"")
        refused(ContainerNetworkConfig(subnet: "10.254.0.1/22"), mentioning: "host bits")
        refused(ContainerNetworkConfig(subnet: "10.254.0.0/31"), mentioning: "prefix between")
        refused(ContainerNetworkConfig(subnet: "10.0.0.0/8"), mentioning: "prefix between")
        refused(ContainerNetworkConfig(subnet: "127.1.0.0/24"), mentioning: "loopback")
        refused(ContainerNetworkConfig(subnet: "169.254.1.0/24"), mentioning: "link-local")
        refused(ContainerNetworkConfig(subnet: "230.0.0.0/24"), mentioning: "multicast")
        refused(ContainerNetworkConfig(hostPortRange: 0...10), mentioning: "1...65535")
        refused(ContainerNetworkConfig(hostPortRange: 65000...65536), mentioning: "65536")
        refused(ContainerNetworkConfig(containerPort: 0), mentioning: "container port 0")
        refused(ContainerNetworkConfig(tableName: "bad-name"), mentioning: "bad-name")
        refused(ContainerNetworkConfig(tableName: "1abc"), mentioning: "1abc")
        refused(ContainerNetworkConfig(tableName: ""), mentioning: "table name")
        refused(ContainerNetworkConfig(interfacePrefix: "eth"), mentioning: "eth0")
        refused(ContainerNetworkConfig(interfacePrefix: "veth"), mentioning: "veth")
        refused(ContainerNetworkConfig(interfacePrefix: "cfl1"), mentioning: "ending with a letter")
        refused(ContainerNetworkConfig(interfacePrefix: "Cfl"), mentioning: "lowercase")
        refused(ContainerNetworkConfig(interfacePrefix: "c"), mentioning: "2 to 10")
        refused(ContainerNetworkConfig(interfacePrefix: "c-l"), mentioning: "c-l")
        refused(ContainerNetworkConfig(deniedOutboundNetworks: ["169.254.0.0/16", "nope"]), mentioning: "\"nope\"")
        // Constructing the network validates too, before touching the host.
        #expect(throws: ContainerError.self) {
            _ = try ContainerNetwork(config: ContainerNetworkConfig(subnet: "10.254.0.0/33"), logger: .init(label: "t"))
        }
        // The longest prefix with the largest subnet still fits Linux's 15 characters (abcdefghij16383).
        try ContainerNetworkConfig(subnet: "10.1.0.0/16", interfacePrefix: "abcdefghij").validate()
    }

    @Test("attachments from elsewhere are checked field by field")
    func checkedAttachments() throws {
        let plan = try NetworkPlan(ContainerNetworkConfig())
        let good = plan.attachment(id: "x", slot: 3, hostPort: 61003)
        #expect(try plan.checkedSlot(of: good) == 3)
        var tampered: [NetworkAttachment] = []
        var a = good
        a.hostInterface = "eth0"
        tampered.append(a)
        a = good
        a.namespaceName = "cfl3; flush ruleset"
        tampered.append(a)
        a = good
        a.namespacePath = "/proc/1/ns/net"
        tampered.append(a)
        a = good
        a.containerAddress = "10.254.0.13"  // a gateway address, not a container's
        tampered.append(a)
        a = good
        a.containerAddress = "10.9.0.14"
        tampered.append(a)
        a = good
        a.gatewayAddress = "10.254.0.1"
        tampered.append(a)
        a = good
        a.hostPort = 70000
        tampered.append(a)
        for attachment in tampered {
            #expect(throws: ContainerError.self, "\(attachment)") { _ = try plan.checkedSlot(of: attachment) }
        }
        // Round trip through JSON, as the agent persists it.
        let data = try JSONEncoder().encode(good)
        #expect(try JSONDecoder().decode(NetworkAttachment.self, from: data) == good)
    }

    @Test("allocation is round robin, skips used values and reports exhaustion")
    func allocator() {
        var allocator = RoundRobinAllocator(5...8)
        #expect(allocator.allocate() == 5)
        #expect(allocator.allocate() == 6)
        allocator.release(5)
        #expect(allocator.allocate() == 7)  // not the just-freed 5
        #expect(allocator.allocate() == 8)
        #expect(allocator.allocate() == 5)  // wraps around
        #expect(allocator.allocate() == nil)
        #expect(allocator.isExhausted)
        allocator.release(7)
        #expect(allocator.allocate() == 7)

        var adopted = RoundRobinAllocator(0...9)
        adopted.reserve(3)
        adopted.reserve(42)  // outside the range: ignored
        adopted.resumeAfterUsed()
        #expect(adopted.used == [3])
        #expect(adopted.allocate() == 4)
    }

    @Test("the ruleset holds the elements, numeric priorities and the outbound choice")
    func ruleset() throws {
        let plan = try NetworkPlan(ContainerNetworkConfig(tableName: "cflike_x"))
        let a = plan.attachment(id: "a", slot: 0, hostPort: 61000)
        let b = plan.attachment(id: "b", slot: 1, hostPort: 61001)
        let text = NetworkRuleset.rebuild(plan, attachments: [a, b])
        #expect(text.hasPrefix("table inet cflike_x {}\ndelete table inet cflike_x\ntable inet cflike_x {"))
        #expect(text.contains("elements = { \"cfl0\", \"cfl1\" }"))
        #expect(text.contains("elements = { 61000 : 10.254.0.2 . 8080, 61001 : 10.254.0.6 . 8080 }"))
        #expect(text.contains("elements = { 169.254.0.0/16 }"))
        #expect(text.contains("type nat hook output priority -100;"))
        #expect(!text.contains("dstnat"))
        #expect(text.contains("ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to tcp dport map @hostports"))
        #expect(text.contains("iifname @ifaces oifname @ifaces drop"))
        #expect(text.contains("masquerade"))
        #expect(!text.contains("    iifname @ifaces drop\n  }\n}"))

        let closed = try NetworkPlan(ContainerNetworkConfig(allowOutbound: false, deniedOutboundNetworks: []))
        let closedText = NetworkRuleset.rebuild(closed, attachments: [])
        #expect(!closedText.contains("masquerade"))
        #expect(!closedText.contains("elements"))
        #expect(closedText.contains("    iifname @ifaces drop\n  }\n}"))

        let removal = NetworkRuleset.removeElements(plan, a, interface: true, port: false)
        #expect(removal == "add element inet cflike_x ifaces { \"cfl0\" }\ndelete element inet cflike_x ifaces { \"cfl0\" }\n")
        #expect(NetworkRuleset.removeElements(plan, a, interface: false, port: false).isEmpty)
    }

    @Test("name servers are read from resolv.conf")
    func nameservers() {
        let text = "# comment\nsearch example\nnameserver 10.255.255.53\nnameserver\tfd00::53\nnameserver 192.0.2.9 # x\n"
        #expect(HostNetworking.nameservers(resolvConf: text).map(\.description) == ["10.255.255.53", "192.0.2.9"])
    }
}
