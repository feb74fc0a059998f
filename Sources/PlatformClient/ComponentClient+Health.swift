import PlatformModels

/// The health manager's calls (HealthProtocol.swift).
extension ComponentClient {
    /// Takes or renews the lease; nil when another health manager holds it (409).
    public func healthLease(_ request: HealthLeaseRequest) async throws -> HealthLease? {
        do {
            return try await call(.POST, "/internal/v1/health/lease", json: request, as: HealthLease.self)
        } catch let failure as Failure where failure.statusCode == 409 {
            return nil
        }
    }

    public func releaseHealthLease(holder: String) async throws {
        try await send(.DELETE, "/internal/v1/health/lease?holder=\(Self.segment(holder))")
    }

    /// The state, once it moved past `after` or `waitSeconds` passed.
    public func healthState(after version: Int?, waitSeconds: Int) async throws -> HealthSnapshot {
        var path = "/internal/v1/health/state?wait=\(waitSeconds)"
        if let version { path += "&after=\(version)" }
        return try await call(.GET, path, as: HealthSnapshot.self, timeout: .seconds(Int64(waitSeconds) + 15))
    }

    public func applyHealthActions(_ actions: HealthActions) async throws -> HealthActionsAnswer {
        try await call(.POST, "/internal/v1/health/actions", json: actions, as: HealthActionsAnswer.self)
    }

    public func putAlerts(_ set: HealthAlertSet) async throws -> HealthAlertsAnswer {
        try await call(.PUT, "/internal/v1/health/alerts", json: set, as: HealthAlertsAnswer.self)
    }
}
