import Foundation
import PlatformModels

/// The health manager's configuration: section `health_manager` of `config/cf-like.yaml`
/// (every key is documented there), plus the controller URL and the component credential.
public struct HealthManagerConfig: Sendable {
    /// This health manager's id (lease holder name).
    public var id: String
    public var controllerURL: String
    public var internalCredential: String
    /// `/metrics` and `/healthz`.
    public var listenHost: String
    public var listenPort: Int
    /// How long a lease lasts; it is renewed every third of it.
    public var leaseSeconds: Int
    /// A full decision pass at least this often, events or not.
    public var passIntervalSeconds: Int
    public var decider: Decider.Configuration
    public var alertRules: AlertRules.Configuration
    public var alertmanagerURLs: [URL]
    public var webhookURLs: [URL]
    public var alertResendSeconds: Int

    public init(document: ConfigDocument) throws {
        controllerURL = try document.controllerURL(for: "health_manager")
        internalCredential = try document.secret(fileKey: "controller.internal_credential_file", default: "var/secrets/internal-credential")
        id = try document.componentID("health_manager.id", prefix: "hm")
        let listen = try document.hostPort("health_manager.listen", default: "127.0.0.1:8083")
        listenHost = listen.host
        listenPort = listen.port
        leaseSeconds = try document.int("health_manager.lease_seconds", default: 15, range: 3...300)
        passIntervalSeconds = try document.int("health_manager.pass_interval_seconds", default: 5, range: 1...300)
        let agentTimeout = Double(try document.int("health_manager.agent_timeout_seconds", default: 10, range: 1...3600))
        let backoff = CrashBackoff(
            immediateRestarts: try document.int("health_manager.restart_immediate", default: 3, range: 0...1_000_000),
            firstDelay: Double(try document.int("health_manager.restart_first_delay_seconds", default: 30, range: 0...86_400)),
            maxDelay: Double(try document.int("health_manager.restart_max_delay_seconds", default: 960, range: 0...86_400)),
            maxCrashes: try document.int("health_manager.restart_max_crashes", default: 200, range: 1...1_000_000),
            resetAfter: Double(try document.int("health_manager.crash_reset_seconds", default: 300, range: 1...86_400)))
        decider = Decider.Configuration(agentTimeout: agentTimeout, staleAfter: 30, backoff: backoff)
        var rules = AlertRules.Configuration()
        rules.agentTimeout = agentTimeout
        rules.crashLoopWindow = Double(try document.int("health_manager.crash_loop_window_seconds", default: 600, range: 1...86_400))
        rules.appDownGrace = Double(try document.int("health_manager.app_down_grace_seconds", default: 60, range: 0...86_400))
        rules.routerStaleAfter = Double(try document.int("health_manager.router_table_stale_seconds", default: 60, range: 1...86_400))
        alertRules = rules
        alertmanagerURLs = try Self.urls(document, "health_manager.alertmanager_urls")
        webhookURLs = try Self.urls(document, "health_manager.alert_webhook_urls")
        alertResendSeconds = try document.int("health_manager.alert_resend_seconds", default: 30, range: 1...3600)
    }

    static func urls(_ document: ConfigDocument, _ key: String) throws -> [URL] {
        try document.string(key, default: "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.map { text in
                guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                    throw ConfigError("\(key) (\(ConfigDocument.environmentName(key))): '\(text.prefix(80))' is not an http(s) URL")
                }
                return url
            }
    }
}
