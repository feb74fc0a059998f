import Logging
import NIOCore
import PlatformModels
import Synchronization

/// One route (host + path prefix) and its routable instances.
final class Route: Sendable {
    let guid: String
    let host: String
    /// Path prefix without a trailing slash; empty matches every path.
    let path: [UInt8]
    let backends: [Backend]
    /// Round-robin position, shared by every event loop.
    let cursor = Atomic<Int>(0)

    init(guid: String, host: String, path: [UInt8], backends: [Backend]) {
        self.guid = guid
        self.host = host
        self.path = path
        self.backends = backends
    }

    /// Whether the request path `p[start..<end]` lies under this route's prefix, segment-aligned:
    /// `/api` matches `/api`, `/api/x` and `/api?q`, not `/apix`.
    @inline(__always)
    func matches(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        let n = path.count
        if n == 0 { return true }
        guard end - start >= n else { return false }
        var i = 0
        while i < n {
            if p[start + i] != path[i] { return false }
            i += 1
        }
        if end - start == n { return true }
        let next = p[start + n]
        return next == UInt8(ascii: "/") || next == UInt8(ascii: "?") || next == UInt8(ascii: "#")
    }

    /// The instance with this GUID (sticky sessions).
    func backend(instanceGUID p: UnsafeRawBufferPointer, _ range: Range<Int>) -> Backend? {
        for backend in backends where backend.instanceGUIDBytes.count == range.count {
            if backend.instanceGUIDBytes.withUnsafeBytes({ HTTPSyntax.equalsIgnoringCase($0, 0, p, range.lowerBound, range.count) }) {
                return backend
            }
        }
        return nil
    }

    /// The instance `index` of app `appGUID` (`X-Cf-App-Instance`).
    func backend(appGUID p: UnsafeRawBufferPointer, _ range: Range<Int>, index: Int) -> Backend? {
        for backend in backends where backend.index == index && backend.appGUIDBytes.count == range.count {
            if backend.appGUIDBytes.withUnsafeBytes({ HTTPSyntax.equalsIgnoringCase($0, 0, p, range.lowerBound, range.count) }) {
                return backend
            }
        }
        return nil
    }
}

/// The routes of one host name, longest path prefix first.
final class HostRoutes: Sendable {
    let name: [UInt8]
    let hash: UInt64
    let routes: [Route]

    init(name: [UInt8], hash: UInt64, routes: [Route]) {
        self.name = name
        self.hash = hash
        self.routes = routes
    }

    /// The route with the longest prefix matching the path.
    @inline(__always)
    func match(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Route? {
        for route in routes where route.matches(p, start, end) { return route }
        return nil
    }
}

/// An immutable route table: built once per CC version off the event loops, then handed to
/// every loop, which reads it without locks. Lookups hash the request's own bytes.
final class RouteSnapshot: Sendable {
    /// The CC's table version; -1 before the first table arrived.
    let version: Int
    /// Uptime (ns) when this version was received.
    let receivedAt: Int64
    let routeCount: Int
    let backendCount: Int
    /// Open addressing: indexes into `hosts`, -1 for empty slots; the size is a power of two.
    private let slots: [Int32]
    private let hosts: [HostRoutes]
    /// Every backend by `Backend.key`, so the next table reuses them.
    let backendsByKey: [String: Backend]
    /// Ids of every routed backend (pools drop connections to the others).
    let backendIDs: Set<Int>

    /// The table before the first answer from the CC.
    static let empty = RouteSnapshot(version: -1, receivedAt: 0, hosts: [], backendsByKey: [:], routeCount: 0)

    private init(version: Int, receivedAt: Int64, hosts: [HostRoutes], backendsByKey: [String: Backend], routeCount: Int) {
        self.version = version
        self.receivedAt = receivedAt
        self.hosts = hosts
        self.backendsByKey = backendsByKey
        self.routeCount = routeCount
        self.backendCount = backendsByKey.count
        self.backendIDs = Set(backendsByKey.values.map(\.id))
        var size = 8
        while size < hosts.count * 2 { size <<= 1 }
        var slots = [Int32](repeating: -1, count: size)
        for (index, host) in hosts.enumerated() {
            var slot = Int(truncatingIfNeeded: host.hash) & (size - 1)
            while slots[slot] >= 0 { slot = (slot + 1) & (size - 1) }
            slots[slot] = Int32(index)
        }
        self.slots = slots
    }

    /// Whether a table from the CC has arrived yet.
    var isLoaded: Bool { version >= 0 }

    /// Builds a snapshot from the CC's table. Backends unchanged since `previous` keep their
    /// objects; entries whose address is not an IP literal are skipped and logged.
    static func build(_ table: RouteTable, useHostAddress: Bool, previous: RouteSnapshot?, receivedAt: Int64,
                      logger: Logger) -> RouteSnapshot {
        var backendsByKey: [String: Backend] = [:]
        var byHost: [String: [Route]] = [:]
        var routeCount = 0
        for entry in table.routes {
            let host = normalisedHost(entry.host)
            guard !host.isEmpty else {
                logger.warning("route table entry without a host skipped", metadata: ["route.guid": .string(entry.routeGUID)])
                continue
            }
            var backends: [Backend] = []
            for item in entry.backends {
                let key = Backend.key(item, useHostAddress: useHostAddress)
                if let known = backendsByKey[key] ?? previous?.backendsByKey[key] {
                    backendsByKey[key] = known
                    backends.append(known)
                    continue
                }
                do {
                    let backend = try Backend(item, useHostAddress: useHostAddress)
                    backendsByKey[key] = backend
                    backends.append(backend)
                } catch {
                    logger.warning("route table backend with an unusable address skipped", metadata: [
                        "route.guid": .string(entry.routeGUID), "instance.guid": .string(item.instanceGUID),
                        "error": .string("\(error)"),
                    ])
                }
            }
            var path = Array(entry.path.utf8)
            while path.last == UInt8(ascii: "/") { path.removeLast() }
            byHost[host, default: []].append(Route(guid: entry.routeGUID, host: host, path: path, backends: backends))
            routeCount += 1
        }
        let hosts = byHost.map { name, routes in
            let bytes = Array(name.utf8)
            let hash = bytes.withUnsafeBytes { HostName.hash($0, 0..<bytes.count) }
            return HostRoutes(name: bytes, hash: hash, routes: routes.sorted { $0.path.count > $1.path.count })
        }
        return RouteSnapshot(version: table.version, receivedAt: receivedAt, hosts: hosts,
                             backendsByKey: backendsByKey, routeCount: routeCount)
    }

    /// The routes of the host `p[range]` (compared without case).
    @inline(__always)
    func host(_ p: UnsafeRawBufferPointer, _ range: Range<Int>) -> HostRoutes? {
        let hash = HostName.hash(p, range)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let index = slots[slot]
            if index < 0 { return nil }
            let candidate = hosts[Int(index)]
            if candidate.hash == hash, candidate.name.count == range.count,
               candidate.name.withUnsafeBytes({ HTTPSyntax.equalsIgnoringCase($0, 0, p, range.lowerBound, range.count) }) {
                return candidate
            }
            slot = (slot + 1) & mask
        }
    }

    /// The table's host names are lower case already; tolerate a trailing dot and stray case.
    private static func normalisedHost(_ host: String) -> String {
        var h = host.lowercased()
        while h.hasSuffix(".") { h.removeLast() }
        if let colon = h.lastIndex(of: ":"), !h.hasPrefix("[") { h = String(h[..<colon]) }
        return h
    }
}
