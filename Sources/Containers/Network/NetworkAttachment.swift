/// One container's place on the network: its namespace, veth, addresses and host port.
///
/// Codable so its owner can persist it and hand it back to ``ContainerNetwork/prepare(keeping:)``
/// after a restart; every field is checked again then.
public struct NetworkAttachment: Codable, Sendable, Equatable, Hashable {
    /// The container id it belongs to.
    public var id: String
    /// The `ip netns` name of the container's network namespace.
    public var namespaceName: String
    /// `/var/run/netns/NAME`: what the container joins (``SecureSpec/Network/path(_:)``).
    public var namespacePath: String
    /// The host side of the veth pair.
    public var hostInterface: String
    /// The host side's address, the container's default route.
    public var gatewayAddress: String
    /// The address of `eth0` inside the container.
    public var containerAddress: String
    /// The host port forwarded to ``containerPort``.
    public var hostPort: Int
    /// The port the container's process listens on.
    public var containerPort: Int

    /// An attachment with every field given.
    public init(
        id: String,
        namespaceName: String,
        namespacePath: String,
        hostInterface: String,
        gatewayAddress: String,
        containerAddress: String,
        hostPort: Int,
        containerPort: Int
    ) {
        self.id = id
        self.namespaceName = namespaceName
        self.namespacePath = namespacePath
        self.hostInterface = hostInterface
        self.gatewayAddress = gatewayAddress
        self.containerAddress = containerAddress
        self.hostPort = hostPort
        self.containerPort = containerPort
    }
}
