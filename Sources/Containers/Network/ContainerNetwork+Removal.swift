import Foundation

extension ContainerNetwork {
    /// Deletes the veth, then the namespace, then the elements: the veth is gone before the
    /// rules that confine it are.
    static func remove(
        _ attachment: NetworkAttachment, plan: NetworkPlan, host: HostNetworking,
        links: Bool, interfaceElement: Bool, portElement: Bool
    ) async throws {
        let name = attachment.hostInterface
        if links {
            var commands: [String] = []
            // Deleting one end of a veth deletes both at once; deleting only the namespace name
            // would leave the pair to the kernel's asynchronous cleanup.
            if host.interfaceExists(name) { commands.append("link delete dev \(name)") }
            if host.namespaceExists(attachment.namespaceName) { commands.append("netns delete \(attachment.namespaceName)") }
            try await host.ipBatch(commands, purpose: "removing the veth and namespace \(name)")
        }
        try await host.nftScript(
            NetworkRuleset.removeElements(plan, attachment, interface: interfaceElement, port: portElement),
            purpose: "removing \(name) and host port \(attachment.hostPort) from the nftables table")
    }
}
