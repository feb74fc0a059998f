import Logging
import PlatformModels
import Testing

@testable import AppRouter

func backend(_ app: String, _ index: Int, port: Int, instance: String? = nil, address: String = "127.0.0.1") -> RouteBackend {
    RouteBackend(appGUID: app, processType: "web", instanceGUID: instance ?? "\(app)-i\(index)", index: index,
                 hostAddress: "10.9.9.9", hostPort: 60000 + index, containerAddress: address, containerPort: port)
}

func snapshot(_ routes: [RouteTableEntry], version: Int = 1, previous: RouteSnapshot? = nil, useHostAddress: Bool = false) -> RouteSnapshot {
    RouteSnapshot.build(RouteTable(version: version, routes: routes), useHostAddress: useHostAddress, previous: previous,
                        receivedAt: 1, logger: Logger(label: "test"))
}

/// Looks a request up the way admission does: routing name, then the longest prefix.
func lookup(_ table: RouteSnapshot, host: String, path: String) -> Route? {
    let text = Array((host + " " + path).utf8)
    return text.withUnsafeBytes { p -> Route? in
        let split = host.utf8.count
        guard let name = try? HostName.routingName(p, 0, split), let routes = table.host(p, name) else { return nil }
        return routes.match(p, split + 1, p.count)
    }
}

@Suite struct RoutingTests {
    func routingName(_ host: String) -> String? {
        let bytes = Array(host.utf8)
        return bytes.withUnsafeBytes { p in
            (try? HostName.routingName(p, 0, p.count)).map { String(decoding: bytes[$0], as: UTF8.self) }
        }
    }

    /// SECURITY.md D1.
    @Test func hostRules() {
        #expect(routingName("app.example.com") == "app.example.com")
        #expect(routingName("APP.Example.COM:80") == "APP.Example.COM")
        #expect(routingName("app.example.com.") == "app.example.com")
        #expect(routingName("app.example.com.:8080") == "app.example.com")
        #expect(routingName("app.example.com:") == "app.example.com")
        #expect(routingName("127.0.0.1:8081") == "127.0.0.1")
        #expect(routingName("[::1]:8081") == "[::1]")
        #expect(routingName("my_app.example.com") == "my_app.example.com")
        for bad in ["", ".", "a..b", ".a", "a b", "a/b", "a@b", "a:b:c", "a:99999", "a:123456", "[::1", "[zz]", "a%2eb", "\"a\""] {
            #expect(routingName(bad) == nil, "\(bad)")
        }
        let empty = [UInt8]()
        _ = empty.withUnsafeBytes { p in
            #expect(throws: HostError.empty) { try HostName.routingName(p, 0, 0) }
        }
    }

    @Test func requestTargets() {
        func target(_ s: String) -> RequestTarget? {
            Array(s.utf8).withUnsafeBytes { RequestTarget.parse($0, 0, $0.count) }
        }
        #expect(target("/x?y")?.authority == nil)
        #expect(target("*")?.asterisk == true)
        let absolute = target("http://App.example.com:80/p?q")
        #expect(absolute?.authority == 7..<25)
        #expect(absolute?.pathStart == 25)
        #expect(target("https://a.b")?.pathStart == target("https://a.b")?.pathEnd)
        #expect(target("example.com:443") == nil)
        #expect(target("http://user@host/") == nil)
        #expect(target("ftp://host/") == nil)
        #expect(target("http:///") == nil)
    }

    @Test func lookupByHostAndLongestPrefix() {
        let table = snapshot([
            RouteTableEntry(routeGUID: "root", host: "app.example.com", path: "", backends: [backend("a", 0, port: 1)]),
            RouteTableEntry(routeGUID: "api", host: "app.example.com", path: "/api", backends: [backend("b", 0, port: 2)]),
            RouteTableEntry(routeGUID: "v2", host: "app.example.com", path: "/api/v2/", backends: [backend("c", 0, port: 3)]),
            RouteTableEntry(routeGUID: "other", host: "other.example.com", path: "/only", backends: []),
        ])
        #expect(table.routeCount == 4)
        #expect(lookup(table, host: "app.example.com", path: "/")?.guid == "root")
        #expect(lookup(table, host: "APP.example.com.:443", path: "/api")?.guid == "api")
        #expect(lookup(table, host: "app.example.com", path: "/api/x")?.guid == "api")
        #expect(lookup(table, host: "app.example.com", path: "/api?x=1")?.guid == "api")
        #expect(lookup(table, host: "app.example.com", path: "/apix")?.guid == "root")
        #expect(lookup(table, host: "app.example.com", path: "/api/v2")?.guid == "v2")
        #expect(lookup(table, host: "app.example.com", path: "/api/v2/users")?.guid == "v2")
        #expect(lookup(table, host: "app.example.com", path: "/API")?.guid == "root")
        #expect(lookup(table, host: "other.example.com", path: "/only/x")?.guid == "other")
        #expect(lookup(table, host: "other.example.com", path: "/") == nil)
        #expect(lookup(table, host: "nope.example.com", path: "/") == nil)
        // Path tricks match raw bytes: routing never normalises the path it forwards (D2).
        #expect(lookup(table, host: "app.example.com", path: "/x/../api/v2")?.guid == "root")
    }

    @Test func manyHostsHashWithoutCollisionsLost() {
        let entries = (0..<500).map { i in
            RouteTableEntry(routeGUID: "r\(i)", host: "app\(i).apps.example.com", path: "", backends: [backend("a\(i)", 0, port: 1000 + i)])
        }
        let table = snapshot(entries)
        for i in stride(from: 0, to: 500, by: 7) {
            #expect(lookup(table, host: "APP\(i).apps.example.com", path: "/")?.guid == "r\(i)")
        }
        #expect(lookup(table, host: "app500.apps.example.com", path: "/") == nil)
    }

    @Test func backendsSurviveATableSwapAndAddressesFollowConfig() throws {
        let first = snapshot([RouteTableEntry(routeGUID: "r", host: "a.b", path: "", backends: [backend("a", 0, port: 8080)])])
        let a0 = try #require(first.host(host: "a.b")?.routes.first?.backends.first)
        #expect(a0.addressText == "127.0.0.1:8080")
        a0.bench(until: 99)
        let second = snapshot([RouteTableEntry(routeGUID: "r", host: "a.b", path: "",
                                               backends: [backend("a", 0, port: 8080), backend("a", 1, port: 8081)])],
                              version: 2, previous: first)
        let again = try #require(second.host(host: "a.b")?.routes.first?.backends.first)
        #expect(again === a0)
        #expect(again.isBenched(now: 50))
        let viaHost = snapshot([RouteTableEntry(routeGUID: "r", host: "a.b", path: "", backends: [backend("a", 3, port: 8080)])],
                               useHostAddress: true)
        #expect(viaHost.host(host: "a.b")?.routes.first?.backends.first?.addressText == "10.9.9.9:60003")
        let header = String(decoding: a0.headerBlock, as: UTF8.self)
        #expect(header == "X-CF-ApplicationID: a\r\nX-CF-InstanceIndex: 0\r\nX-CF-InstanceID: a-i0\r\n")
    }

    @Test func instancesWithoutAContainerAddressAreDialedOnTheHost() {
        let table = snapshot([RouteTableEntry(routeGUID: "r", host: "a.b", path: "", backends: [backend("a", 2, port: 8080, address: "")])])
        #expect(table.host(host: "a.b")?.routes.first?.backends.first?.addressText == "10.9.9.9:60002")
    }

    @Test func unusableAddressesAreSkipped() {
        let table = snapshot([RouteTableEntry(routeGUID: "r", host: "a.b", path: "",
                                              backends: [backend("a", 0, port: 1, address: "not-an-ip"), backend("a", 1, port: 2)])])
        #expect(table.host(host: "a.b")?.routes.first?.backends.count == 1)
    }
}

@Suite struct BalancerTests {
    func route(_ n: Int) -> Route {
        let table = snapshot([RouteTableEntry(routeGUID: "r", host: "a.b", path: "", backends: (0..<n).map { backend("a", $0, port: 9000 + $0) })])
        return table.host(host: "a.b")!.routes[0]
    }

    @Test func roundRobinVisitsEveryInstanceInTurn() {
        let route = route(3)
        let balancer = Balancer(strategy: .roundRobin, maxInFlightPerBackend: 0)
        var counts: [Int: Int] = [:]
        for _ in 0..<300 {
            let b = balancer.pick(route, now: 0, excluding: TriedBackends())!
            counts[b.index, default: 0] += 1
        }
        #expect(counts == [0: 100, 1: 100, 2: 100])
    }

    @Test func benchedInstancesAreSkippedUntilTheBenchEnds() {
        let route = route(3)
        let balancer = Balancer(strategy: .roundRobin, maxInFlightPerBackend: 0)
        route.backends[1].bench(until: 1000)
        for _ in 0..<30 { #expect(balancer.pick(route, now: 500, excluding: TriedBackends())?.index != 1) }
        var seen = Set<Int>()
        for _ in 0..<30 { seen.insert(balancer.pick(route, now: 1001, excluding: TriedBackends())!.index) }
        #expect(seen == [0, 1, 2])
    }

    @Test func allBenchedStillServesRatherThan503() {
        let route = route(2)
        for b in route.backends { b.bench(until: 1000) }
        let balancer = Balancer(strategy: .roundRobin, maxInFlightPerBackend: 0)
        #expect(balancer.pick(route, now: 10, excluding: TriedBackends()) != nil)
    }

    @Test func triedInstancesAreExcluded() {
        let route = route(3)
        let balancer = Balancer(strategy: .roundRobin, maxInFlightPerBackend: 0)
        var tried = TriedBackends()
        tried.insert(route.backends[0].id)
        tried.insert(route.backends[2].id)
        for _ in 0..<10 { #expect(balancer.pick(route, now: 0, excluding: tried)?.index == 1) }
        tried.insert(route.backends[1].id)
        #expect(balancer.pick(route, now: 0, excluding: tried) == nil)
        #expect(tried.count == 3)
    }

    @Test func leastConnectionsPrefersTheIdlestInstance() {
        let route = route(3)
        route.backends[0].inFlight.store(5, ordering: .relaxed)
        route.backends[1].inFlight.store(1, ordering: .relaxed)
        route.backends[2].inFlight.store(3, ordering: .relaxed)
        let balancer = Balancer(strategy: .leastConnections, maxInFlightPerBackend: 0)
        for _ in 0..<10 { #expect(balancer.pick(route, now: 0, excluding: TriedBackends())?.index == 1) }
        route.backends[1].inFlight.store(9, ordering: .relaxed)
        #expect(balancer.pick(route, now: 0, excluding: TriedBackends())?.index == 2)
        // Ties rotate.
        for b in route.backends { b.inFlight.store(0, ordering: .relaxed) }
        var seen = Set<Int>()
        for _ in 0..<30 { seen.insert(balancer.pick(route, now: 0, excluding: TriedBackends())!.index) }
        #expect(seen == [0, 1, 2])
    }

    @Test func perBackendCap() {
        let route = route(2)
        let balancer = Balancer(strategy: .roundRobin, maxInFlightPerBackend: 2)
        route.backends[0].inFlight.store(2, ordering: .relaxed)
        for _ in 0..<10 { #expect(balancer.pick(route, now: 0, excluding: TriedBackends())?.index == 1) }
        route.backends[1].inFlight.store(2, ordering: .relaxed)
        #expect(balancer.pick(route, now: 0, excluding: TriedBackends()) == nil)
        #expect(balancer.allAtCapacity(route))
    }
}

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 3, benchNanoseconds: 30_000_000_000)

    @Test func connectFailuresBenchAndRetryUpToThreeAttempts() {
        #expect(policy.decide(.connectFailed("refused"), attempt: 1, replayable: false) == .retry(bench: true, freshConnection: false, excludeInstance: true))
        #expect(policy.decide(.closedBeforeRequestWritten, attempt: 2, replayable: false) == .retry(bench: true, freshConnection: false, excludeInstance: true))
        #expect(policy.decide(.connectFailed("timeout"), attempt: 3, replayable: true) == .fail(bench: true))
    }

    @Test func neverRetriesOnceTheRequestReachedTheBackend() {
        for failure in [BackendFailure.closedBeforeResponse(reused: false), .responseTimeout, .invalidResponse("x"), .closedDuringResponse] {
            #expect(policy.decide(failure, attempt: 1, replayable: true) == .fail(bench: false), "\(failure)")
        }
        #expect(policy.decide(.closedBeforeResponse(reused: true), attempt: 1, replayable: false) == .fail(bench: false))
    }

    @Test func staleKeepAliveConnectionsRetryFreshWithoutBenching() {
        #expect(policy.decide(.closedBeforeResponse(reused: true), attempt: 1, replayable: true) == .retry(bench: false, freshConnection: true, excludeInstance: false))
        #expect(policy.decide(.closedBeforeResponse(reused: true), attempt: 3, replayable: true) == .fail(bench: false))
    }

    @Test func onlySafeMethodsWithoutBodyAreReplayable() {
        func replayable(_ method: String, body: Bool) -> Bool {
            Array(method.utf8).withUnsafeBytes { RetryPolicy.isReplayable(method: $0, 0, $0.count, hasBody: body) }
        }
        #expect(replayable("GET", body: false))
        #expect(replayable("HEAD", body: false))
        #expect(!replayable("GET", body: true))
        #expect(!replayable("POST", body: false))
        #expect(!replayable("DELETE", body: false))
        #expect(!replayable("get", body: false))
    }
}

extension RouteSnapshot {
    /// Test convenience: the routes of a host given as a string.
    func host(host: String) -> HostRoutes? {
        let bytes = Array(host.utf8)
        return bytes.withUnsafeBytes { self.host($0, 0..<$0.count) }
    }
}
