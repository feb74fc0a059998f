import PlatformModels

/// The router's configuration: section `router` of `config/cf-like.yaml` (every key documented
/// there), plus the CC's URL and the component credential from section `controller`.
public struct RouterConfig: Sendable {
    /// Which address of an instance the router dials.
    public enum BackendAddress: String, Sendable {
        /// The container's own address and port: the router runs on the agent's host. Instances
        /// without a container address in the table are dialed on the host address.
        case container
        /// The agent host's address and the instance's host port: the router runs elsewhere.
        case host
    }

    /// The router's id at the controller (`router.router_id`, default `router-<hostname>`),
    /// sent with every route-table poll.
    public var routerID: String
    /// Plain HTTP listener (host, port); port 0 picks a free one (tests).
    public var listenHost: String
    public var listenPort: Int
    /// TLS listener, nil when off; needs `tlsCertificateFile` and `tlsKeyFile`.
    public var tlsListenHost: String?
    public var tlsListenPort: Int
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// `/health` and `/metrics` for load balancers and Prometheus.
    public var statusHost: String
    public var statusPort: Int
    /// Base URL of the Cloud Controller and the component credential for `/internal/`.
    public var controllerURL: String
    public var credential: String
    public var backendAddress: BackendAddress
    public var balancing: BalancingStrategy
    /// Event loop threads; 0 = one per core.
    public var threads: Int
    /// Seconds of the CC long-poll (the CC caps it at 60).
    public var routeTablePollSeconds: Int
    /// Connect timeout for one dial (CONTRACTS.md: 5 s).
    public var dialTimeoutMilliseconds: Int64
    /// Time a backend has to start answering, and the longest silence while it streams.
    public var backendResponseTimeoutSeconds: Int64
    /// Seconds an idle client keep-alive connection (or a client silent while sending a body) is kept.
    public var clientIdleTimeoutSeconds: Int64
    /// Time a client has to send a complete request head once it started one (slowloris).
    public var headerReadTimeoutMilliseconds: Int64
    /// Seconds an idle pooled backend connection is kept.
    public var backendIdleTimeoutSeconds: Int64
    /// How long a benched instance gets no requests after a connect failure.
    public var benchSeconds: Int64
    /// Attempts per request on connect failures (CONTRACTS.md: 3).
    public var maxAttempts: Int
    /// Largest request head (request line + fields); larger ones answer 431.
    public var maxHeaderBytes: Int
    /// Most header fields in one head; more answer 431.
    public var maxHeaderFields: Int
    /// Open client connections beyond which new ones are closed at once.
    public var maxClientConnections: Int
    /// Requests in flight per instance beyond which it gets no more (0 = no cap).
    public var maxConnectionsPerBackend: Int
    /// Idle keep-alive connections kept per instance and event loop.
    public var maxIdleConnectionsPerBackend: Int
    /// Seconds graceful shutdown waits for requests in flight.
    public var drainTimeoutSeconds: Int64
    /// Seconds between failing `/health` and closing the listeners on shutdown.
    public var drainWaitSeconds: Int64
    /// Access log file; "-" for standard output, "" for none.
    public var accessLog: String

    /// Defaults for tests and embedding: loopback, ephemeral ports, no TLS.
    public init(controllerURL: String, credential: String) {
        routerID = ConfigDocument.defaultComponentID(prefix: "router")
        listenHost = "127.0.0.1"
        listenPort = 0
        tlsListenHost = nil
        tlsListenPort = 0
        tlsCertificateFile = nil
        tlsKeyFile = nil
        statusHost = "127.0.0.1"
        statusPort = 0
        self.controllerURL = controllerURL
        self.credential = credential
        backendAddress = .container
        balancing = .roundRobin
        threads = 0
        routeTablePollSeconds = 30
        dialTimeoutMilliseconds = 5000
        backendResponseTimeoutSeconds = 900
        clientIdleTimeoutSeconds = 90
        headerReadTimeoutMilliseconds = 10_000
        backendIdleTimeoutSeconds = 90
        benchSeconds = 30
        maxAttempts = 3
        maxHeaderBytes = 1 << 20
        maxHeaderFields = 1000
        maxClientConnections = 10_000
        maxConnectionsPerBackend = 500
        maxIdleConnectionsPerBackend = 100
        drainTimeoutSeconds = 30
        drainWaitSeconds = 0
        accessLog = ""
    }

    /// Reads the `router` section (and `controller.external_url`,
    /// `controller.internal_credential_file`); errors name the key at fault.
    public init(document: ConfigDocument) throws {
        var url = document.string("controller.external_url", default: "http://127.0.0.1:9022")
        while url.hasSuffix("/") { url.removeLast() }
        let credential = try document.secret(fileKey: "controller.internal_credential_file",
                                             default: "var/secrets/internal-credential")
        self.init(controllerURL: url, credential: credential)
        routerID = try document.componentID("router.router_id", prefix: "router")
        let listen = try document.hostPort("router.listen", default: "127.0.0.1:8080")
        listenHost = listen.host
        listenPort = listen.port
        let tls = document.string("router.tls_listen", default: "")
        if !tls.isEmpty {
            let address = try document.hostPort("router.tls_listen", default: tls)
            tlsListenHost = address.host
            tlsListenPort = address.port
            let cert = document.string("router.tls_certificate_file", default: "")
            let key = document.string("router.tls_key_file", default: "")
            guard !cert.isEmpty, !key.isEmpty else {
                throw ConfigError("router.tls_listen is set, so router.tls_certificate_file and router.tls_key_file are required")
            }
            tlsCertificateFile = document.resolve(cert)
            tlsKeyFile = document.resolve(key)
        }
        let status = try document.hostPort("router.status_listen", default: "127.0.0.1:8082")
        statusHost = status.host
        statusPort = status.port
        let address = document.string("router.backend_address", default: "container")
        guard let backendAddress = BackendAddress(rawValue: address) else {
            throw ConfigError("router.backend_address (\(ConfigDocument.environmentName("router.backend_address"))) must be container or host, got '\(address)'")
        }
        self.backendAddress = backendAddress
        let balancing = document.string("router.balancing", default: "round-robin")
        guard let strategy = BalancingStrategy(rawValue: balancing) else {
            throw ConfigError("router.balancing (\(ConfigDocument.environmentName("router.balancing"))) must be round-robin or least-connections, got '\(balancing)'")
        }
        self.balancing = strategy
        threads = try document.int("router.threads", default: 0, range: 0...256)
        routeTablePollSeconds = try document.int("router.route_table_poll_seconds", default: 30, range: 1...60)
        dialTimeoutMilliseconds = Int64(try document.int("router.dial_timeout_ms", default: 5000, range: 100...60_000))
        backendResponseTimeoutSeconds = Int64(try document.int("router.backend_response_timeout_seconds", default: 900, range: 1...86_400))
        clientIdleTimeoutSeconds = Int64(try document.int("router.client_idle_timeout_seconds", default: 90, range: 1...3600))
        headerReadTimeoutMilliseconds = Int64(try document.int("router.header_read_timeout_ms", default: 10_000, range: 100...600_000))
        backendIdleTimeoutSeconds = Int64(try document.int("router.backend_idle_timeout_seconds", default: 90, range: 1...3600))
        benchSeconds = Int64(try document.int("router.bench_seconds", default: 30, range: 1...3600))
        maxAttempts = try document.int("router.max_attempts", default: 3, range: 1...10)
        maxHeaderBytes = try document.int("router.max_header_bytes", default: 1 << 20, range: 1024...(64 << 20))
        maxHeaderFields = try document.int("router.max_header_fields", default: 1000, range: 16...100_000)
        maxClientConnections = try document.int("router.max_client_connections", default: 10_000, range: 1...1_000_000)
        maxConnectionsPerBackend = try document.int("router.max_connections_per_backend", default: 500, range: 0...1_000_000)
        maxIdleConnectionsPerBackend = try document.int("router.max_idle_connections_per_backend", default: 100, range: 0...10_000)
        drainTimeoutSeconds = Int64(try document.int("router.drain_timeout_seconds", default: 30, range: 0...3600))
        drainWaitSeconds = Int64(try document.int("router.drain_wait_seconds", default: 0, range: 0...3600))
        let log = document.string("router.access_log", default: "var/log/router-access.log")
        accessLog = (log.isEmpty || log == "-") ? log : document.resolve(log)
    }

    /// The plain listener as the router reports it (`host:port`, IPv6 hosts bracketed), with
    /// the bound `port` (the configured one may be 0).
    public func reportedListen(port: Int) -> String {
        listenHost.contains(":") ? "[\(listenHost)]:\(port)" : "\(listenHost):\(port)"
    }
}
