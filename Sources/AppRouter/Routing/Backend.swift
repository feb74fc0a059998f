import NIOCore
import PlatformModels
import Synchronization

/// One routable instance as the router dials it. Shared by every event loop and kept across
/// route-table versions (same instance, same address: same object), so its connection count
/// and bench survive a table swap.
final class Backend: Sendable {
    /// Process-wide identity, the key of the per-loop connection pools.
    let id: Int
    let appGUID: String
    let instanceGUID: String
    let processType: String
    let index: Int
    let address: SocketAddress
    /// `address:port` as dialed, for logs and the access log.
    let addressText: String
    let addressBytes: [UInt8]
    /// The headers naming this instance, ready to append to a forwarded head
    /// (`X-CF-ApplicationID`, `X-CF-InstanceIndex`, `X-CF-InstanceID`).
    let headerBlock: [UInt8]
    let instanceGUIDBytes: [UInt8]
    let appGUIDBytes: [UInt8]
    let indexBytes: [UInt8]
    /// Requests assigned to this instance right now (all loops).
    let inFlight = Atomic<Int>(0)
    /// Uptime in nanoseconds until which the instance is benched after a connect failure.
    let benchedUntil = Atomic<Int64>(0)

    private static let nextID = Atomic<Int>(1)

    init(_ route: RouteBackend, useHostAddress: Bool) throws {
        self.id = Self.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        self.appGUID = route.appGUID
        self.instanceGUID = route.instanceGUID
        self.processType = route.processType
        self.index = route.index
        let viaHost = Self.dialsHostAddress(route, useHostAddress: useHostAddress)
        let host = viaHost ? route.hostAddress : route.containerAddress
        let port = viaHost ? route.hostPort : route.containerPort
        self.address = try SocketAddress(ipAddress: host, port: port)
        self.addressText = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        self.addressBytes = Array(addressText.utf8)
        self.headerBlock = Array("X-CF-ApplicationID: \(Self.safe(route.appGUID))\r\nX-CF-InstanceIndex: \(route.index)\r\nX-CF-InstanceID: \(Self.safe(route.instanceGUID))\r\n".utf8)
        self.instanceGUIDBytes = Array(Self.safe(route.instanceGUID).utf8)
        self.appGUIDBytes = Array(Self.safe(route.appGUID).utf8)
        self.indexBytes = Array(String(route.index).utf8)
    }

    /// The key under which a later table's entry is the same backend.
    static func key(_ route: RouteBackend, useHostAddress: Bool) -> String {
        dialsHostAddress(route, useHostAddress: useHostAddress)
            ? "\(route.instanceGUID)|\(route.hostAddress)|\(route.hostPort)"
            : "\(route.instanceGUID)|\(route.containerAddress)|\(route.containerPort)"
    }

    /// The host address is dialed when configured, and for instances the CC knows no
    /// container address of (the CC sends it empty).
    static func dialsHostAddress(_ route: RouteBackend, useHostAddress: Bool) -> Bool {
        useHostAddress || route.containerAddress.isEmpty
    }

    /// Benched instances get no new requests while another instance can take them.
    @inline(__always)
    func isBenched(now: Int64) -> Bool {
        benchedUntil.load(ordering: .relaxed) > now
    }

    func bench(until deadline: Int64) {
        benchedUntil.store(deadline, ordering: .relaxed)
    }

    /// GUIDs come from the CC; keep anything that could split a header line out of them anyway.
    private static func safe(_ s: String) -> String {
        String(s.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F }.map(Character.init))
    }
}
