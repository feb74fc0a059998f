import Containers
import Foundation
import Testing

@testable import ExecutionAgent

/// The agent with a network pool on real runc, shim and networking (as root): instances start on
/// ready attachments, the pool is refilled, replaced by a restarted agent without touching the
/// adopted instance, and removed with the rest of the network.
@Suite(.serialized) struct AgentNetworkPoolTests {
    @Test func instancesStartOnPooledNetworksThatAreRefilledReplacedOnRestartAndTornDown() async throws {
        try await AgentLab.with("pool", slot: 11, extraConfig: "network_pool_size: 2") { lab in
            #expect(lab.config.networkPoolSize == 2)
            let runtime = await lab.agent.runtime
            let network = try #require((runtime as? InstanceRunner)?.network)
            await network.waitForPool()
            let ready = await network.pooled
            #expect(ready.count == 2)

            // The instance gets the oldest ready attachment, and the pool is refilled.
            let report = try await lab.start(lab.assignment())
            #expect(report.containerAddress == ready[0].containerAddress)
            #expect(report.hostPort == ready[0].hostPort)
            await network.waitForPool()
            let refilled = await network.pooled
            #expect(refilled.count == 2)
            #expect(!refilled.contains { $0.containerAddress == report.containerAddress || $0.hostPort == report.hostPort })
            #expect(try await lab.get(report, "/")["ok"] as? Bool == true)
            let instanceNamespace = try #require((await network.attachments).first?.namespaceName)
            #expect(try namespacePIDs(instanceNamespace).count >= 1, "the instance runs in its own namespace")
            for attachment in refilled {
                #expect(try namespacePIDs(attachment.namespaceName).isEmpty, "a ready namespace holds a process")
                // A trace the next agent's pool must not show.
                try AgentLab.run("/usr/sbin/ip", ["-n", attachment.namespaceName, "address", "add", "127.0.0.9/8", "dev", "lo"])
            }

            // The agent restarts: it adopts the instance with its namespace and replaces the pool.
            lab.loops.cancel()
            let second = try lab.restartedAgent()
            try await second.prepare()
            let secondRuntime = await second.runtime
            let secondNetwork = try #require((secondRuntime as? InstanceRunner)?.network)
            await secondNetwork.waitForPool()
            let replaced = await secondNetwork.pooled
            #expect(replaced.count == 2)
            for attachment in replaced {
                #expect(try namespacePIDs(attachment.namespaceName).isEmpty)
                let lo = try AgentLab.run("/usr/sbin/ip", ["-n", attachment.namespaceName, "-4", "address", "show", "dev", "lo"])
                #expect(!lo.contains("127.0.0.9"), "the new pool has the old pool's namespace \(attachment.namespaceName)")
            }
            #expect(!replaced.contains { $0.namespaceName == instanceNamespace })
            let adopted = try #require(await second.reports().first)
            #expect(adopted.state == .running && adopted.containerAddress == report.containerAddress && adopted.hostPort == report.hostPort)
            #expect(try await lab.get(report, "/")["ok"] as? Bool == true)

            // Stopping the instance removes its namespace; the pool stays as it was.
            await second.stopAll()
            #expect(!FileManager.default.fileExists(atPath: "/var/run/netns/" + instanceNamespace))
            #expect(await secondNetwork.pooled == replaced)
            let prefix = lab.config.interfacePrefix
            #expect(try ourNamespaces(prefix).sorted() == replaced.map(\.namespaceName))

            // Teardown removes the pool with the rest. (The first agent, gone in real life, still
            // lists the instance: it lets go of it first, while the table is there.)
            await lab.agent.stopAll()
            try await second.teardownNetwork()
            #expect(try ourNamespaces(prefix).isEmpty)
            #expect(!(try AgentLab.run("/usr/sbin/ip", ["-o", "link"])).contains(": \(prefix)"))
            #expect(!(try AgentLab.run("/usr/sbin/nft", ["list", "tables"])).contains(lab.config.nftablesTable))
        }
    }
}

/// Pids of the processes in network namespace `name`.
private func namespacePIDs(_ name: String) throws -> [String] {
    try AgentLab.run("/usr/sbin/ip", ["netns", "pids", name]).split(separator: "\n").map(String.init)
}

/// The lab's network namespaces (prefix and slot number).
private func ourNamespaces(_ prefix: String) throws -> [String] {
    try AgentLab.run("/usr/sbin/ip", ["netns", "list"]).split(separator: "\n").compactMap { line in
        let name = String(line.split(separator: " ").first ?? "")
        let digits = name.dropFirst(prefix.count)
        return name.hasPrefix(prefix) && !digits.isEmpty && digits.allSatisfy(\.isNumber) ? name : nil
    }
}
