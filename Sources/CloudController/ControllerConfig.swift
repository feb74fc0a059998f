import Foundation
import GitFetch
import PlatformModels

/// The Cloud Controller's configuration: section `controller` (and `postgres` for the embedded
/// database) of `config/cf-like.yaml`; every key documented there.
public struct ControllerConfig: Sendable {
    public var listenHost: String
    public var listenPort: Int
    /// Base URL clients use to reach this API (links are absolute and start with it).
    public var externalURL: String
    /// libpq conninfo of the platform database.
    public var databaseConninfo: String
    public var databasePoolSize: Int
    public var tokenSigningKey: String
    public var internalCredential: String
    public var accessTokenTTL: Int
    public var refreshTokenTTL: Int
    public var passwordKDFRounds: Int
    public var defaultDomain: String
    public var defaultStack: String
    public var defaultStackDescription: String
    public var maxRequestBodyBytes: Int
    public var defaultMemoryMB: Int
    public var defaultDiskMB: Int
    public var maxMemoryMB: Int
    public var maxDiskMB: Int
    public var maxInstances: Int
    public var maxEnvironmentBytes: Int
    /// Directory of the content-addressed blobstore (packages, later droplets and caches).
    public var blobstoreDirectory: String
    public var maxPackageBytes: Int
    public var maxPackageUncompressedBytes: Int
    public var maxPackageEntries: Int
    public var maxPackageCompressionRatio: Int
    public var blobstoreGCIntervalSeconds: Int
    /// Smallest file the resource pool records and matches (bytes); smaller files are always uploaded.
    public var resourcePoolMinBytes: Int
    /// Largest file the resource pool records and matches (bytes).
    public var resourcePoolMaxBytes: Int
    /// Pool entries neither matched nor used for this many days are dropped by the janitor.
    public var resourcePoolMaxIdleDays: Int
    /// Total size of the pooled files; past it the janitor drops the least recently used entries
    /// (0 turns the pool off: nothing is recorded or matched).
    public var resourcePoolMaxTotalBytes: Int
    /// Log lines kept per app (the newest), across restarts and redeploys.
    public var appLogLines: Int
    /// How often agents are told to heartbeat (seconds).
    public var agentHeartbeatIntervalSeconds: Int
    /// An agent silent this long is marked lost: its instances are placed elsewhere and leave the route table.
    public var agentLostAfterSeconds: Int
    /// Largest body accepted on `/internal/` (heartbeats, log batches), in bytes.
    public var maxInternalBodyBytes: Int
    /// Seconds between keep-alive lines on a followed log stream.
    public var logStreamKeepaliveSeconds: Int
    /// Memory and disk a build gets when its request names none (MB).
    public var stagingMemoryMB: Int
    public var stagingDiskMB: Int
    /// How long a stager may work on one build; the monitor fails it 60 s after that.
    public var stagingTimeoutSeconds: Int
    /// Hosts (`host` or `host:port`) whose git URLs apps may use over plain `http://` (an
    /// in-house git server); https is always allowed.
    public var gitHTTPHosts: [String]
    /// What git URLs apps may name.
    public var gitURLPolicy: GitURLPolicy {
        var policy = GitURLPolicy.default
        policy.insecureHostAllowList = Set(gitHTTPHosts)
        return policy
    }
    /// How often stagers must poll while they run builds (seconds; told to them in every answer).
    public var stagerHeartbeatIntervalSeconds: Int
    /// A stager silent this long is lost: the builds it claimed fail.
    public var stagerLostAfterSeconds: Int
    /// Largest droplet or buildpack cache a stager may upload (bytes, as sent).
    public var maxDropletBytes: Int

    /// Reads the keys; errors name the key at fault.
    public init(document: ConfigDocument) throws {
        let listen = try document.hostPort("controller.listen", default: "127.0.0.1:9022")
        listenHost = listen.host
        listenPort = listen.port
        var external = document.string("controller.external_url", default: "http://\(listen.host):\(listen.port)")
        while external.hasSuffix("/") { external.removeLast() }
        externalURL = external
        let url = document.string("controller.database_url", default: "")
        if url.isEmpty {
            databaseConninfo = Self.embeddedConninfo(
                socketDir: document.path("postgres.socket_dir", default: "var/postgres/run"),
                port: try document.int("postgres.port", default: 54320, range: 1...65535),
                database: document.string("postgres.database", default: "cflike"),
                user: document.string("postgres.user", default: "cflike"),
                passfile: document.path("postgres.passfile", default: "var/secrets/pgpass"))
        } else {
            databaseConninfo = url
        }
        databasePoolSize = try document.int("controller.database_pool_size", default: 8, range: 1...256)
        tokenSigningKey = try document.secret(fileKey: "controller.token_signing_key_file", default: "var/secrets/token-signing-key")
        guard tokenSigningKey.utf8.count >= 32 else {
            throw ConfigError("controller.token_signing_key_file: the key must be at least 32 characters")
        }
        internalCredential = try document.secret(fileKey: "controller.internal_credential_file", default: "var/secrets/internal-credential")
        guard internalCredential.utf8.count >= 16 else {
            throw ConfigError("controller.internal_credential_file: the credential must be at least 16 characters")
        }
        accessTokenTTL = try document.int("controller.access_token_ttl_seconds", default: 1200, range: 60...86400)
        refreshTokenTTL = try document.int("controller.refresh_token_ttl_seconds", default: 2_592_000, range: 600...31_536_000)
        passwordKDFRounds = try document.int("controller.password_kdf_rounds", default: 600_000, range: PasswordHasher.minimumRounds...10_000_000)
        defaultDomain = document.string("controller.default_domain", default: "apps.localhost").lowercased()
        defaultStack = document.string("controller.default_stack", default: "cflike-host")
        defaultStackDescription = document.string(
            "controller.default_stack_description", default: "The host's own userland (/usr) mounted read-only")
        maxRequestBodyBytes = try document.int("controller.max_request_body_bytes", default: 1_048_576, range: 1024...(64 << 20))
        defaultMemoryMB = try document.int("controller.default_memory_mb", default: 256, range: 16...65536)
        defaultDiskMB = try document.int("controller.default_disk_mb", default: 1024, range: 16...1_048_576)
        maxMemoryMB = try document.int("controller.max_memory_mb", default: 8192, range: 16...1_048_576)
        maxDiskMB = try document.int("controller.max_disk_mb", default: 8192, range: 16...1_048_576)
        maxInstances = try document.int("controller.max_instances", default: 100, range: 1...10000)
        maxEnvironmentBytes = try document.int("controller.max_environment_bytes", default: 131_072, range: 1024...(16 << 20))
        blobstoreDirectory = document.path("controller.blobstore_dir", default: "var/blobstore")
        maxPackageBytes = try document.int("controller.max_package_bytes", default: 1 << 30, range: 1024...(64 << 30))
        maxPackageUncompressedBytes = try document.int(
            "controller.max_package_uncompressed_bytes", default: 4 << 30, range: 1024...(256 << 30))
        maxPackageEntries = try document.int("controller.max_package_entries", default: 100_000, range: 1...10_000_000)
        blobstoreGCIntervalSeconds = try document.int("controller.blobstore_gc_interval_seconds", default: 3600, range: 10...604_800)
        maxPackageCompressionRatio = try document.int("controller.max_package_compression_ratio", default: 200, range: 2...100_000)
        resourcePoolMinBytes = try document.int("controller.resource_pool_min_bytes", default: 65536, range: 1...(64 << 30))
        resourcePoolMaxBytes = try document.int("controller.resource_pool_max_bytes", default: 512 << 20, range: 1...(64 << 30))
        guard resourcePoolMinBytes <= resourcePoolMaxBytes else {
            throw ConfigError("controller.resource_pool_min_bytes: must not be larger than controller.resource_pool_max_bytes")
        }
        resourcePoolMaxIdleDays = try document.int("controller.resource_pool_max_idle_days", default: 30, range: 1...3650)
        resourcePoolMaxTotalBytes = try document.int("controller.resource_pool_max_total_bytes", default: 10 << 30, range: 0...(1 << 50))
        appLogLines = try document.int("controller.app_log_lines", default: 1000, range: 1...1_000_000)
        agentHeartbeatIntervalSeconds = try document.int("controller.agent_heartbeat_interval_seconds", default: 10, range: 1...300)
        agentLostAfterSeconds = try document.int("controller.agent_lost_after_seconds", default: 30, range: 2...86400)
        maxInternalBodyBytes = try document.int("controller.max_internal_body_bytes", default: 8 << 20, range: 65536...(256 << 20))
        logStreamKeepaliveSeconds = try document.int("controller.log_stream_keepalive_seconds", default: 15, range: 1...300)
        stagingMemoryMB = try document.int("controller.staging_memory_in_mb", default: 1024, range: 16...1_048_576)
        stagingDiskMB = try document.int("controller.staging_disk_in_mb", default: 4096, range: 16...1_048_576)
        stagingTimeoutSeconds = try document.int("controller.staging_timeout_seconds", default: 900, range: 1...86400)
        gitHTTPHosts = document.string("controller.git_http_hosts", default: "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }.filter { !$0.isEmpty }
        stagerHeartbeatIntervalSeconds = try document.int("controller.stager_heartbeat_interval_seconds", default: 10, range: 1...300)
        stagerLostAfterSeconds = try document.int("controller.stager_lost_after_seconds", default: 30, range: 2...86400)
        maxDropletBytes = try document.int("controller.max_droplet_bytes", default: 2 << 30, range: 1024...(64 << 30))
    }

    /// key=value conninfo for the private cluster; values quoted so paths with spaces work.
    static func embeddedConninfo(socketDir: String, port: Int, database: String, user: String, passfile: String) -> String {
        func q(_ s: String) -> String {
            "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        return "host=\(q(socketDir)) port=\(port) dbname=\(q(database)) user=\(q(user)) passfile=\(q(passfile))"
    }
}
