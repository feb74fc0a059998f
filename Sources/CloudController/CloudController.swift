import Foundation
import Hummingbird
import Logging
import NIOPosix
import PlatformModels
import PostgresStore
import Prometheus

/// What every controller needs; built once per process.
struct Services: Sendable {
    let config: ControllerConfig
    let db: Database
    let body: JSONBody
    let tokens: TokenService
    let metrics: PrometheusCollectorRegistry
    let threadPool: NIOThreadPool
    let blobstore: Blobstore
    /// Wakes long-polls and log streams on NOTIFY (one LISTEN connection per controller).
    let feed: ChangeFeed
    let logger: Logger

    /// Absolute URL of an API path.
    func url(_ path: String) -> String { config.externalURL + path }
    func link(_ path: String, post: Bool = false) -> Link { Link(href: url(path), method: post ? "POST" : nil) }
}

/// The Cloud Controller component: the only one that talks to PostgreSQL.
public enum CloudController {
    /// Applies pending migrations (under an advisory lock) and seeds the default domain and stack.
    @discardableResult
    public static func prepareDatabase(pool: PostgresPool, config: ControllerConfig, logger: Logger) async throws -> [Int] {
        let applied = try await Migrator(migrations: Schema.migrations, logger: logger).migrate(pool)
        let domain = config.defaultDomain
        let stack = config.defaultStack
        let description = config.defaultStackDescription
        try await pool.transaction { conn in
            try conn.query(
                "INSERT INTO domains(guid, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [Rows.newGuid(), domain])
            try conn.query(
                "INSERT INTO stacks(guid, name, description, is_default) VALUES ($1, $2, $3, true) ON CONFLICT (name) DO NOTHING",
                [Rows.newGuid(), stack, description])
        }
        return applied
    }

    /// Creates the platform admin `username` with `password` unless a user of that name exists.
    /// Returns true when it created the user.
    public static func bootstrapAdmin(pool: PostgresPool, config: ControllerConfig, threadPool: NIOThreadPool,
                                      username: String, password: String) async throws -> Bool {
        guard password.count >= 8 else { throw ConfigError("the admin password must be at least 8 characters") }
        let hasher = PasswordHasher(rounds: config.passwordKDFRounds)
        let hash = try await threadPool.runIfActive { try hasher.hash(password) }
        return try await pool.transaction { conn in
            let rows = try conn.query(
                """
                INSERT INTO users(guid, username, password_hash, admin) VALUES ($1, $2, $3, true)
                ON CONFLICT (origin, username) DO NOTHING RETURNING guid
                """, [Rows.newGuid(), username, hash])
            return !rows.rows.isEmpty
        }
    }

    /// Builds the HTTP application: public CF v3 API, `/oauth/token`, `/internal/`, `/healthz`, `/metrics`.
    /// Migrations run before the server binds.
    public static func makeApplication(config: ControllerConfig, pool: PostgresPool, threadPool: NIOThreadPool,
                                       logger: Logger) -> some ApplicationProtocol {
        let feed = ChangeFeed(pool: pool, logger: logger)
        let router = buildRouter(config: config, pool: pool, threadPool: threadPool, feed: feed, logger: logger)
        var app = Application(
            router: router,
            configuration: .init(address: .hostname(config.listenHost, port: config.listenPort), serverName: "cf-like"),
            logger: logger)
        app.addServices(BlobstoreJanitor(
            pool: pool, blobstore: Blobstore(root: config.blobstoreDirectory), threadPool: threadPool,
            interval: .seconds(config.blobstoreGCIntervalSeconds), grace: 3600, resourcePool: ResourcePool(config: config), logger: logger))
        app.addServices(
            ChangeFeedService(feed: feed),
            AgentMonitor(db: Database(pool: pool), interval: .seconds(config.agentHeartbeatIntervalSeconds),
                         lostAfterSeconds: config.agentLostAfterSeconds, cfAPI: config.externalURL, logger: logger))
        app.addServices(StagingMonitor(
            db: Database(pool: pool), interval: .seconds(min(config.stagerHeartbeatIntervalSeconds, config.stagerLostAfterSeconds)),
            lostAfterSeconds: config.stagerLostAfterSeconds, keepLogLines: config.appLogLines, logger: logger))
        app.beforeServerStarts {
            let applied = try await prepareDatabase(pool: pool, config: config, logger: logger)
            logger.info("database ready", metadata: ["migrations.applied": .stringConvertible(applied.count)])
        }
        return app
    }

    /// The router with every route; tests drive it without sockets.
    public static func buildRouter(config: ControllerConfig, pool: PostgresPool, threadPool: NIOThreadPool,
                                   logger: Logger) -> Router<ControllerContext> {
        buildRouter(config: config, pool: pool, threadPool: threadPool, feed: ChangeFeed(pool: pool, logger: logger), logger: logger)
    }

    /// The router with its change feed (which starts listening on first use).
    static func buildRouter(config: ControllerConfig, pool: PostgresPool, threadPool: NIOThreadPool, feed: ChangeFeed,
                            logger: Logger) -> Router<ControllerContext> {
        let db = Database(pool: pool)
        let issuer = config.externalURL + "/oauth/token"
        let tokens = TokenService(
            signer: JWTSigner(secret: config.tokenSigningKey), issuer: issuer, accessTTL: config.accessTokenTTL,
            refreshTTL: config.refreshTokenTTL, hasher: PasswordHasher(rounds: config.passwordKDFRounds), threadPool: threadPool)
        let services = Services(
            config: config, db: db, body: JSONBody(maxBytes: config.maxRequestBodyBytes), tokens: tokens,
            metrics: PrometheusCollectorRegistry(), threadPool: threadPool,
            blobstore: Blobstore(root: config.blobstoreDirectory), feed: feed, logger: logger)

        let router = Router(context: ControllerContext.self)
        router.add(middleware: RequestMiddleware(metrics: services.metrics, logger: logger))
        RootController(services: services).register(router)
        OAuthController(services: services).register(router)

        let v3 = router.group("v3").add(middleware: AuthMiddleware(tokens: tokens, db: db))
        OrganizationsController(services: services).register(v3)
        SpacesController(services: services).register(v3)
        UsersController(services: services).register(v3)
        RolesController(services: services).register(v3)
        AppsController(services: services).register(v3)
        ProcessesController(services: services).register(v3)
        DomainsController(services: services).register(v3)
        RoutesController(services: services).register(v3)
        StacksController(services: services).register(v3)
        AuditEventsController(services: services).register(v3)
        JobsController(services: services).register(v3)
        PackagesController(services: services).register(v3)
        ResourceMatchesController(services: services).register(v3)
        BuildpacksController(services: services).register(v3)
        DropletsController(services: services).register(v3)
        BuildsController(services: services).register(v3)
        ProcessStatsController(services: services).register(v3)
        AppLogsController(services: services).register(v3)
        AdminController(services: services).register(v3)

        let internalGroup = router.group("internal").add(middleware: InternalAuthMiddleware(credential: Array(config.internalCredential.utf8)))
        InternalController(services: services).register(internalGroup)
        AgentsController(services: services).register(internalGroup)
        AppLogsController(services: services).registerInternal(internalGroup)
        RouteTableController(services: services).register(internalGroup)
        DropletDownloadController(services: services).register(internalGroup)
        StagingController(services: services).register(internalGroup)
        HealthController(services: services).register(internalGroup)
        return router
    }
}
