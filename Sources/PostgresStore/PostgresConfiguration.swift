/// Where and how a `PostgresPool` connects.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection string: a `postgresql://` URL or `key=value` pairs.
    public var conninfo: String
    /// The most connections the pool opens at once.
    public var poolSize: Int
    /// libpq's `connect_timeout`, overriding any value in `conninfo`.
    public var connectTimeoutSeconds: Int

    /// Creates a configuration; `conninfo` is never logged or put into errors.
    public init(conninfo: String, poolSize: Int = 8, connectTimeoutSeconds: Int = 5) {
        self.conninfo = conninfo
        self.poolSize = poolSize
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }
}
