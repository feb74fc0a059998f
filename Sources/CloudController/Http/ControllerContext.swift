import Hummingbird
import Logging
import NIOCore

/// Who is calling: a user resolved from a valid access token.
public struct Actor: Sendable, Equatable {
    public var userGuid: String
    public var username: String
    public var isAdmin: Bool
}

/// Per-request context: the request id and, once authenticated, the actor.
public struct ControllerContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Echoed as X-Vcap-Request-Id and logged with every line of this request.
    public var requestID: String = ""
    public var actor: Actor?
    /// Set by the internal-API middleware once a component credential matched.
    public var component: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// Bodies are read through `JSONBody`, which applies the configured cap itself.
    public var maxUploadSize: Int { 64 << 20 }

    /// The authenticated actor, or 401 when the request carried no token.
    public func requireActor() throws -> Actor {
        guard let actor else { throw APIError.notAuthenticated }
        return actor
    }
}
