/// The nftables text of the network's one table, and the element changes of attach and detach.
///
/// One `inet` table (so IPv6 from a container, which has link-local addresses on its veth, meets
/// the same input and forward rules as IPv4), with three pieces of state that attach and detach
/// change element by element, never by reloading rules:
///
/// - `ifaces`: host-side veth names of the containers; every filter rule keys on it, because the
///   interface a packet came in on cannot be forged from inside a container, its source address
///   can.
/// - `hostports`: `tcp dport` → `container address . container port`, the DNAT map.
/// - `denied`: destinations no container reaches even when outbound traffic is allowed.
///
/// Priorities are numeric: nftables 1.0.6 refuses the name `dstnat` on the nat output hook.
/// Every value written here was validated by ``NetworkPlan`` (names of letters and digits,
/// addresses and ports formatted from numbers), so nothing from outside reaches the script raw.
enum NetworkRuleset {
    static let interfaceSet = "ifaces"
    static let portMap = "hostports"
    static let deniedSet = "denied"

    /// A script that replaces the table atomically (one transaction): create it if missing so
    /// the delete cannot fail, delete it, and define it again with exactly `attachments`.
    static func rebuild(_ plan: NetworkPlan, attachments: [NetworkAttachment]) -> String {
        let table = plan.config.tableName
        var lines = ["table inet \(table) {}", "delete table inet \(table)", "table inet \(table) {"]

        var ifaces = "  set \(interfaceSet) { type ifname;"
        if !attachments.isEmpty {
            ifaces += " elements = { " + attachments.map { quoted($0.hostInterface) }.joined(separator: ", ") + " };"
        }
        lines.append(ifaces + " }")

        var ports = "  map \(portMap) { type inet_service : ipv4_addr . inet_service;"
        if !attachments.isEmpty {
            ports += " elements = { " + attachments.map(portElement).joined(separator: ", ") + " };"
        }
        lines.append(ports + " }")

        var denied = "  set \(deniedSet) { type ipv4_addr; flags interval;"
        if !plan.denied.isEmpty {
            denied += " elements = { " + plan.denied.map(\.description).joined(separator: ", ") + " };"
        }
        lines.append(denied + " }")

        let ifs = "@\(interfaceSet)"
        lines += [
            // Host ports of the host's own addresses only: a connection to another host's port
            // in the same range must leave untouched.
            "  chain prerouting {",
            "    type nat hook prerouting priority -100; policy accept;",
            "    meta nfproto ipv4 fib daddr type local dnat ip to tcp dport map @\(portMap)",
            "  }",
            // DNAT of locally generated connections cannot reach 127.0.0.0/8 (the source would
            // stay a loopback address); a client on this host dials the container address.
            "  chain output {",
            "    type nat hook output priority -100; policy accept;",
            "    ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to tcp dport map @\(portMap)",
            "  }",
            "  chain postrouting {",
            "    type nat hook postrouting priority 100; policy accept;",
        ]
        if plan.config.allowOutbound {
            lines.append("    iifname \(ifs) oifname != \(ifs) masquerade")
        }
        lines += [
            "  }",
            // Nothing on the host answers a container, whatever address or port it dials;
            // replies to the host's own connections (a proxy, a health check) pass.
            "  chain input {",
            "    type filter hook input priority 0; policy accept;",
            "    iifname \(ifs) ct state established,related accept",
            "    iifname \(ifs) drop",
            "  }",
            "  chain forward {",
            "    type filter hook forward priority 0; policy accept;",
            // Container to container, directly or through a host port (DNAT makes that a forward).
            "    iifname \(ifs) oifname \(ifs) drop",
            // From outside into a container: only through a host port, and the replies.
            "    oifname \(ifs) ct state established,related accept",
            "    oifname \(ifs) ct status dnat accept",
            "    oifname \(ifs) drop",
            // From a container to the outside.
            "    iifname \(ifs) ct state established,related accept",
            "    iifname \(ifs) ip daddr @\(deniedSet) drop",
        ]
        if !plan.config.allowOutbound {
            lines.append("    iifname \(ifs) drop")
        }
        lines += ["  }", "}"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Adds one container's elements.
    static func addElements(_ plan: NetworkPlan, _ attachment: NetworkAttachment) -> String {
        let table = plan.config.tableName
        return """
            add element inet \(table) \(interfaceSet) { \(quoted(attachment.hostInterface)) }
            add element inet \(table) \(portMap) { \(portElement(attachment)) }

            """
    }

    /// Removes one container's elements whether or not they are there: adding an element that
    /// exists is a no-op, so add-then-delete in one transaction cannot fail on a missing one
    /// (nftables 1.0.6 has no `destroy`). `interface` and `port` say which of the two to touch;
    /// one that now belongs to another container is left alone.
    static func removeElements(_ plan: NetworkPlan, _ attachment: NetworkAttachment, interface: Bool, port: Bool) -> String {
        let table = plan.config.tableName
        var lines: [String] = []
        if interface {
            lines.append("add element inet \(table) \(interfaceSet) { \(quoted(attachment.hostInterface)) }")
            lines.append("delete element inet \(table) \(interfaceSet) { \(quoted(attachment.hostInterface)) }")
        }
        if port {
            lines.append("add element inet \(table) \(portMap) { \(portElement(attachment)) }")
            lines.append("delete element inet \(table) \(portMap) { \(attachment.hostPort) }")
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// Deletes the table whether or not it exists.
    static func deleteTable(_ plan: NetworkPlan) -> String {
        "table inet \(plan.config.tableName) {}\ndelete table inet \(plan.config.tableName)\n"
    }

    private static func portElement(_ attachment: NetworkAttachment) -> String {
        "\(attachment.hostPort) : \(attachment.containerAddress) . \(attachment.containerPort)"
    }

    private static func quoted(_ name: String) -> String { "\"\(name)\"" }
}
