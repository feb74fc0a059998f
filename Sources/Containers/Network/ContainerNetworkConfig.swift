/// How ``ContainerNetwork`` lays out container addresses, host ports and its nftables table.
///
/// The subnet is cut into /30 slots: slot `n` is `subnet + 4n`, its host side (the
/// container's gateway) is `+1`, the container's `eth0` is `+2`. Host-side veths and network
/// namespaces are both named `interfacePrefix` followed by the slot number (`cfl0`, `cfl1`, ...),
/// so everything of ours on the host is recognisable by name.
public struct ContainerNetworkConfig: Sendable, Equatable {
    /// IPv4 CIDR the container addresses come from; must overlap no route, address or
    /// resolver of the host. Default `10.254.0.0/22` (256 slots).
    public var subnet: String
    /// Host ports handed out one per container and forwarded to its ``containerPort``.
    /// Default `61000...61999`, just above Linux's default ephemeral range.
    public var hostPortRange: ClosedRange<Int>
    /// Whether containers may open connections to the outside (masqueraded behind the host's
    /// address). Default `true`; when `false` the forward chain drops them.
    public var allowOutbound: Bool
    /// Name of the one `inet` nftables table that holds all of this network's rules. Default
    /// `cflike_dea`.
    public var tableName: String
    /// Prefix of host-side veth and network namespace names (lowercase letters and digits,
    /// ending in a letter). Default `cfl`. With the slot number a name must fit 15 characters.
    public var interfacePrefix: String
    /// The port a container's process listens on (its `$PORT`). Default 8080.
    public var containerPort: Int
    /// Destinations containers may never reach, even with ``allowOutbound``. Default the
    /// link-local range `169.254.0.0/16`, where cloud metadata services answer.
    public var deniedOutboundNetworks: [String]
    /// Attachments kept ready ahead of time (namespace, veth, addresses, host port and table
    /// elements), so that ``ContainerNetwork/attach(id:)`` runs no command; 0 to 64. Default 0
    /// (every attach makes its own).
    public var poolSize: Int

    /// A configuration; every parameter has the documented default.
    public init(
        subnet: String = "10.254.0.0/22",
        hostPortRange: ClosedRange<Int> = 61000...61999,
        allowOutbound: Bool = true,
        tableName: String = "cflike_dea",
        interfacePrefix: String = "cfl",
        containerPort: Int = 8080,
        deniedOutboundNetworks: [String] = ["169.254.0.0/16"],
        poolSize: Int = 0
    ) {
        self.subnet = subnet
        self.hostPortRange = hostPortRange
        self.allowOutbound = allowOutbound
        self.tableName = tableName
        self.interfacePrefix = interfacePrefix
        self.containerPort = containerPort
        self.deniedOutboundNetworks = deniedOutboundNetworks
        self.poolSize = poolSize
    }

    /// Throws a ``ContainerError`` of kind `.invalidArgument` naming the first unusable value.
    public func validate() throws {
        _ = try NetworkPlan(self)
    }
}

/// A validated configuration with its values parsed.
struct NetworkPlan: Sendable {
    /// Shortest prefix accepted: 16 384 slots is far more than one host runs.
    static let shortestPrefix = 16
    /// Largest pool of ready attachments accepted.
    static let maxPoolSize = 64
    /// Linux's limit on interface names (IFNAMSIZ - 1).
    static let maxInterfaceNameLength = 15
    /// Prefixes that would make our names collide with interfaces the system or other
    /// software creates (`eth0`, `br0`, `veth1`, ...). Names matching ours may be deleted at
    /// start, so these are refused outright.
    static let reservedPrefixes: Set<String> = [
        "bat", "bond", "br", "bridge", "can", "cali", "cni", "docker", "dummy", "em", "en", "eno", "enp",
        "ens", "enx", "erspan", "eth", "flannel", "gre", "gretap", "ib", "ifb", "ip6gre", "ip6tnl",
        "ipvlan", "lo", "lxc", "lxcbr", "macvlan", "mesh", "nlmon", "p", "ppp", "sit", "sl", "tailscale",
        "tap", "team", "tun", "tunl", "usb", "vboxnet", "vcan", "veth", "virbr", "vlan", "vmnet", "vti",
        "vxlan", "wg", "wl", "wlan", "ww", "wwan", "zt",
    ]

    let config: ContainerNetworkConfig
    let subnet: IPv4Network
    let slotCount: Int
    let denied: [IPv4Network]

    init(_ config: ContainerNetworkConfig) throws {
        self.config = config
        guard let subnet = IPv4Network(config.subnet) else {
            throw ContainerError(
                .invalidArgument,
                "container subnet \"\(config.subnet)\" is not an IPv4 network in CIDR form with its host bits zero (like 10.254.0.0/22)")
        }
        guard (Self.shortestPrefix...30).contains(subnet.prefixLength) else {
            throw ContainerError(
                .invalidArgument,
                "container subnet \(subnet) must have a prefix between /\(Self.shortestPrefix) and /30: each container takes a /30")
        }
        for (reserved, why) in Self.reservedRanges where reserved.overlaps(subnet) {
            throw ContainerError(.invalidArgument, "container subnet \(subnet) overlaps \(reserved) (\(why))")
        }
        self.subnet = subnet
        slotCount = 1 << (30 - subnet.prefixLength)

        let ports = config.hostPortRange
        guard ports.lowerBound >= 1, ports.upperBound <= 65535 else {
            throw ContainerError(
                .invalidArgument, "host port range \(ports.lowerBound)...\(ports.upperBound) must lie within 1...65535")
        }
        guard (1...65535).contains(config.containerPort) else {
            throw ContainerError(.invalidArgument, "container port \(config.containerPort) must lie within 1...65535")
        }

        let table = config.tableName
        guard (1...64).contains(table.count), let first = table.first, first.isASCII, first.isLetter,
            table.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
        else {
            throw ContainerError(
                .invalidArgument,
                "nftables table name \"\(table)\" must be 1 to 64 ASCII letters, digits or underscores, starting with a letter")
        }

        let prefix = config.interfacePrefix
        guard (2...10).contains(prefix.count),
            prefix.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) }),
            prefix.first?.isLetter == true, prefix.last?.isLetter == true
        else {
            throw ContainerError(
                .invalidArgument,
                "interface prefix \"\(prefix)\" must be 2 to 10 lowercase ASCII letters or digits, starting and ending with a letter")
        }
        guard !Self.reservedPrefixes.contains(prefix) else {
            throw ContainerError(
                .invalidArgument,
                "interface prefix \"\(prefix)\" is used by interfaces the system creates (like \(prefix)0); choose another (default cfl)")
        }
        let longest = prefix.count + String(slotCount - 1).count
        guard longest <= Self.maxInterfaceNameLength else {
            throw ContainerError(
                .invalidArgument,
                "interface prefix \"\(prefix)\" is too long for \(slotCount) slots: \(prefix)\(slotCount - 1) has \(longest) characters, Linux allows \(Self.maxInterfaceNameLength)")
        }

        guard (0...Self.maxPoolSize).contains(config.poolSize) else {
            throw ContainerError(.invalidArgument, "network pool size \(config.poolSize) must lie within 0...\(Self.maxPoolSize)")
        }

        var denied: [IPv4Network] = []
        for text in config.deniedOutboundNetworks {
            guard let network = IPv4Network(text) else {
                throw ContainerError(
                    .invalidArgument,
                    "denied outbound network \"\(text)\" is not an IPv4 network in CIDR form with its host bits zero")
            }
            denied.append(network)
        }
        self.denied = denied
    }

    /// Ranges a container subnet can never use, with the reason.
    static let reservedRanges: [(IPv4Network, String)] = [
        (IPv4Network(address: IPv4Address(0), prefixLength: 8), "\"this network\""),
        (IPv4Network(address: IPv4Address(127 << 24), prefixLength: 8), "loopback"),
        (IPv4Network(address: IPv4Address(169 << 24 | 254 << 16), prefixLength: 16), "link-local"),
        (IPv4Network(address: IPv4Address(224 << 24), prefixLength: 3), "multicast and reserved"),
    ]

    // MARK: Slots and names

    /// The host-side interface and namespace name of a slot.
    func name(slot: Int) -> String {
        config.interfacePrefix + String(slot)
    }

    /// The slot a name of ours stands for, or nil when the name is not ours. Any number counts
    /// (even one past this subnet's slots), so leftovers of an earlier, larger subnet are
    /// recognised too.
    func slot(ofName name: String) -> Int? {
        guard name.hasPrefix(config.interfacePrefix) else { return nil }
        let digits = name.dropFirst(config.interfacePrefix.count)
        guard (1...7).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits == "0" || !digits.hasPrefix("0")
        else { return nil }
        return Int(digits)
    }

    func gateway(slot: Int) -> IPv4Address { IPv4Address(subnet.address.value + UInt32(slot) * 4 + 1) }
    func containerAddress(slot: Int) -> IPv4Address { IPv4Address(subnet.address.value + UInt32(slot) * 4 + 2) }

    /// The slot an address inside the subnet belongs to, or nil when it is outside.
    func slot(ofContainerAddress address: IPv4Address) -> Int? {
        guard subnet.contains(address), address.value & 3 == 2 else { return nil }
        return Int((address.value - subnet.address.value) / 4)
    }

    /// The attachment this network gives a container in `slot` with `hostPort`.
    func attachment(id: String, slot: Int, hostPort: Int) -> NetworkAttachment {
        let name = name(slot: slot)
        return NetworkAttachment(
            id: id,
            namespaceName: name,
            namespacePath: HostNetworking.namespaceDirectory + "/" + name,
            hostInterface: name,
            gatewayAddress: gateway(slot: slot).description,
            containerAddress: containerAddress(slot: slot).description,
            hostPort: hostPort,
            containerPort: config.containerPort
        )
    }

    /// The slot of an attachment this network could have made, or an error saying why it is
    /// not one of ours. Persisted attachments come back from disk, so every field is checked
    /// before any of them reaches a command line or a ruleset.
    func checkedSlot(of attachment: NetworkAttachment) throws -> Int {
        func refuse(_ why: String) -> ContainerError {
            ContainerError(.invalidArgument, "network attachment of \"\(attachment.id)\" is not one of this network's: \(why)")
        }
        guard let address = IPv4Address(attachment.containerAddress),
            let slot = slot(ofContainerAddress: address)
        else { throw refuse("container address \(attachment.containerAddress) is not a slot address in \(subnet)") }
        let name = name(slot: slot)
        guard attachment.hostInterface == name, attachment.namespaceName == name,
            attachment.namespacePath == HostNetworking.namespaceDirectory + "/" + name
        else {
            throw refuse(
                "interface \(attachment.hostInterface) / namespace \(attachment.namespaceName) should both be \(name) for \(address)")
        }
        guard attachment.gatewayAddress == gateway(slot: slot).description else {
            throw refuse("gateway \(attachment.gatewayAddress) should be \(gateway(slot: slot)) for \(address)")
        }
        guard (1...65535).contains(attachment.hostPort), (1...65535).contains(attachment.containerPort) else {
            throw refuse("port \(attachment.hostPort) or \(attachment.containerPort) is not a TCP port")
        }
        return slot
    }
}
