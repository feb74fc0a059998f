import PlatformModels

/// The alerts that should be active, as a pure function of (health snapshot, now).
///
/// | alert | severity | fires when |
/// |---|---|---|
/// | `InstanceCrashLoop` | critical | an instance of a process crashed `crashLoopThreshold` times, the last within `crashLoopWindow` |
/// | `AppDown` | critical | a started process with instances wanted has none RUNNING, past `appDownGrace` since it was started or scaled and since its newest instance began STARTING |
/// | `AgentLost` | critical | an agent has not heartbeated for more than `agentTimeout` |
/// | `InsufficientCapacity` | warning | instances of a process could not be placed |
/// | `StagingFailed` | warning | the app's latest failed build failed within `stagingFailureWindow` |
/// | `RouterTableStale` | warning | a router seen within the last 5 minutes reported a route table older than `routerStaleAfter`, or a router seen within the last hour has not polled for more than `routerStaleAfter` |
///
/// The controller keeps one alert per distinct label set, so labels hold only what names the
/// thing that is wrong (alert, app, process, agent, router), never counts or times: those go in the
/// annotations, which may change from one pass to the next without starting a new alert.
/// The result is sorted by alert name, then by labels, so equal snapshots give equal lists.
///
/// Exit descriptions and staging errors are app and buildpack text: each is cleaned
/// (``UntrustedText``) before it goes into words, and every alert leaves ``AlertDraft/sanitized()``,
/// so no colour code or control character of an app can make the controller refuse the set.
public struct AlertRules: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Crashes of one instance at which its process counts as crash-looping.
        public var crashLoopThreshold: Int
        /// Seconds since the last crash within which a crash loop is still current.
        public var crashLoopWindow: Double
        /// Seconds a started process may have no RUNNING instance before it counts as down
        /// (room for pushing, scaling and restarts).
        public var appDownGrace: Double
        /// Seconds without a heartbeat after which an agent counts as lost.
        public var agentTimeout: Double
        /// Seconds a failed build keeps its app's staging alert active.
        public var stagingFailureWindow: Double
        /// Seconds beyond which a router's route table (or its silence) counts as stale.
        public var routerStaleAfter: Double

        public init(crashLoopThreshold: Int = 3, crashLoopWindow: Double = 600, appDownGrace: Double = 60,
                    agentTimeout: Double = 10, stagingFailureWindow: Double = 900, routerStaleAfter: Double = 60) {
            self.crashLoopThreshold = crashLoopThreshold
            self.crashLoopWindow = crashLoopWindow
            self.appDownGrace = appDownGrace
            self.agentTimeout = agentTimeout
            self.stagingFailureWindow = stagingFailureWindow
            self.routerStaleAfter = routerStaleAfter
        }
    }

    /// Alert names, as they appear in the `alertname` label.
    public enum Name {
        public static let instanceCrashLoop = "InstanceCrashLoop"
        public static let appDown = "AppDown"
        public static let agentLost = "AgentLost"
        public static let insufficientCapacity = "InsufficientCapacity"
        public static let stagingFailed = "StagingFailed"
        public static let routerTableStale = "RouterTableStale"
    }

    /// A router's reported table age counts while it was seen within this many seconds.
    public static let routerReportWindow: Double = 300
    /// A silent router counts as stale only while it was seen within this many seconds; after
    /// that it counts as gone (taken out of service), not as broken.
    public static let routerForgetAfter: Double = 3600

    public var configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Every alert that should be active at `now` (Unix seconds), sorted.
    public func evaluate(_ snapshot: HealthSnapshot, now: Double) -> [AlertDraft] {
        let byProcess = Dictionary(grouping: snapshot.instances, by: \.processGuid)
        var seen = Set<String>()
        var alerts: [AlertDraft] = []
        for process in snapshot.processes.sorted(by: { $0.guid < $1.guid }) where seen.insert(process.guid).inserted {
            let instances = (byProcess[process.guid] ?? []).sorted { ($0.index, $0.guid) < ($1.index, $1.guid) }
            if let alert = crashLoop(process, instances, now: now) { alerts.append(alert) }
            if let alert = appDown(process, instances, now: now) { alerts.append(alert) }
            if let alert = insufficientCapacity(process, instances) { alerts.append(alert) }
        }
        alerts += snapshot.agents.compactMap { agentLost($0, now: now) }
        alerts += stagingFailed(snapshot.stagingFailures, now: now)
        alerts += snapshot.routers.compactMap { routerTableStale($0, now: now) }
        return Self.sorted(alerts.map { $0.sanitized() })
    }

    /// By alert name, then by the labels in key order: a total order on distinct label sets.
    static func sorted(_ alerts: [AlertDraft]) -> [AlertDraft] {
        func key(_ alert: AlertDraft) -> [String] {
            alert.labels.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
        }
        return alerts.sorted { a, b in
            if a.name != b.name { return a.name < b.name }
            return key(a).lexicographicallyPrecedes(key(b))
        }
    }

    // MARK: Rules

    func crashLoop(_ process: HealthProcess, _ instances: [HealthInstance], now: Double) -> AlertDraft? {
        let looping = instances.filter { instance in
            guard instance.crashCount >= configuration.crashLoopThreshold, let lastCrash = instance.lastCrash else { return false }
            return now - lastCrash <= configuration.crashLoopWindow
        }
        guard !looping.isEmpty else { return nil }
        // The instance that crashed last says best what is going wrong now.
        let latest = looping.max { ($0.lastCrash ?? 0, -$0.index) < ($1.lastCrash ?? 0, -$1.index) }!
        let crashes = looping.map(\.crashCount).max() ?? 0
        let indexes = Self.list(looping.map { String($0.index) })
        let minutes = Self.duration(configuration.crashLoopWindow)
        let exit = latest.exitDescription.map { UntrustedText.clean($0, as: .reason) }
        var annotations = [
            "summary": "App \(process.appName) (process \(process.type)) keeps crashing",
            "description": "\(looping.count == 1 ? "Instance" : "Instances") \(indexes) of \(Self.describe(process)) "
                + "crashed repeatedly (up to \(crashes) times in a row, the last within \(minutes)). "
                + "Last exit: \(exit ?? "unknown"). Check the app's logs (cf-like logs \(process.appName) --recent).",
            "crash_count": String(crashes),
        ]
        annotations["exit_description"] = exit ?? ""
        return AlertDraft(labels: processLabels(Name.instanceCrashLoop, "critical", process, withGuid: true),
                          annotations: annotations)
    }

    func appDown(_ process: HealthProcess, _ instances: [HealthInstance], now: Double) -> AlertDraft? {
        guard process.state == "STARTED", process.instances > 0 else { return nil }
        guard !instances.contains(where: { $0.state == .running }) else { return nil }
        guard now - process.updatedAt >= configuration.appDownGrace else { return nil }
        // An instance still starting within the grace may yet come up.
        guard !instances.contains(where: { $0.state == .starting && now - $0.since < configuration.appDownGrace }) else {
            return nil
        }
        let states = Dictionary(grouping: instances, by: \.state)
            .sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\($0.value.count) \($0.key.rawValue)" }
        let seen = states.isEmpty ? "none has been placed" : "instances are " + Self.list(states)
        return AlertDraft(
            labels: processLabels(Name.appDown, "critical", process, withGuid: false),
            annotations: [
                "summary": "App \(process.appName) (process \(process.type)) is down",
                "description": "The \(Self.describe(process)) should run \(Self.plural(process.instances, "instance", "instances")) "
                    + "but none is RUNNING (\(seen)). Requests to its routes fail until one is.",
            ])
    }

    func insufficientCapacity(_ process: HealthProcess, _ instances: [HealthInstance]) -> AlertDraft? {
        let unplaced = instances.filter { $0.placementError != nil }
        guard !unplaced.isEmpty else { return nil }
        let reasons = Self.list(Array(Set(unplaced.compactMap(\.placementError))).sorted())
        let indexes = Self.list(unplaced.map { String($0.index) })
        return AlertDraft(
            labels: processLabels(Name.insufficientCapacity, "warning", process, withGuid: true),
            annotations: [
                "summary": "App \(process.appName) (process \(process.type)) cannot place all its instances",
                "description": "\(Self.plural(unplaced.count, "instance", "instances")) of \(Self.describe(process)) "
                    + "(\(Self.plural(unplaced.count, "index", "indexes")) \(indexes)) could not be placed: \(reasons). "
                    + "Add agents or room, or scale the app down.",
                "unplaced_count": String(unplaced.count),
                "reason": reasons,
            ])
    }

    func agentLost(_ agent: HealthAgent, now: Double) -> AlertDraft? {
        let silent = now - agent.lastHeartbeat
        guard silent > configuration.agentTimeout else { return nil }
        return AlertDraft(
            labels: ["alertname": Name.agentLost, "severity": "critical", "agent_id": agent.id],
            annotations: [
                "summary": "Execution agent \(agent.id) is lost",
                "description": "Execution agent \(agent.id) has not sent a heartbeat for \(Self.duration(silent)) "
                    + "(the limit is \(Self.duration(configuration.agentTimeout))). Its instances are being placed on other agents.",
            ])
    }

    func stagingFailed(_ failures: [HealthStagingFailure], now: Double) -> [AlertDraft] {
        let recent = failures.filter { now - $0.failedAt <= configuration.stagingFailureWindow }
        let latest = Dictionary(grouping: recent, by: \.appGuid).values.compactMap { builds in
            builds.max { ($0.failedAt, $0.buildGuid) < ($1.failedAt, $1.buildGuid) }
        }
        return latest.map { failure in
            // Capped below the annotation's own cap, so the description keeps its last sentence.
            let error = UntrustedText.clean(failure.error, as: .stagingError)
            return AlertDraft(
                labels: ["alertname": Name.stagingFailed, "severity": "warning",
                         "app_guid": failure.appGuid, "app_name": failure.appName],
                annotations: [
                    "summary": "Staging app \(failure.appName) failed",
                    "description": "The latest build of app \(failure.appName) failed to stage: \(error). "
                        + "The app keeps running its previous droplet, if it has one.",
                    "error": error,
                    "build_guid": failure.buildGuid,
                ])
        }
    }

    func routerTableStale(_ router: HealthRouter, now: Double) -> AlertDraft? {
        let silent = now - router.lastSeen
        let limit = configuration.routerStaleAfter
        let summary: String
        let description: String
        if silent > limit, silent <= Self.routerForgetAfter {
            var words = "Router \(router.id) has not polled the route table for \(Self.duration(silent)) "
                + "(the limit is \(Self.duration(limit))), so it may be routing with an out-of-date table"
            if let version = router.tableVersion { words += " (version \(version))" }
            summary = "Router \(router.id) stopped polling the route table"
            description = words + ". Check that it runs and can reach the cloud controller."
        } else if silent <= Self.routerReportWindow, let age = router.tableAgeSeconds, Double(age) > limit {
            summary = "Router \(router.id) served a stale route table"
            description = "Router \(router.id) served a route table that had not matched the cloud controller's for "
                + "\(Self.duration(Double(age))) (the limit is \(Self.duration(limit))) when it last polled"
                + (router.tableVersion.map { ", at version \($0)" } ?? "")
                + ". Requests may have gone to instances that were gone, and new routes were missing. "
                + "Check its connection to the cloud controller."
        } else {
            return nil
        }
        return AlertDraft(
            labels: ["alertname": Name.routerTableStale, "severity": "warning", "router_id": router.id],
            annotations: ["summary": summary, "description": description])
    }

    // MARK: Words

    func processLabels(_ name: String, _ severity: String, _ process: HealthProcess, withGuid: Bool) -> [String: String] {
        var labels = ["alertname": name, "severity": severity, "app_guid": process.appGuid, "app_name": process.appName,
                      "space_guid": process.spaceGuid, "process_type": process.type]
        if withGuid { labels["process_guid"] = process.guid }
        return labels
    }

    static func describe(_ process: HealthProcess) -> String {
        "process \(process.type) of app \(process.appName)"
    }

    static func plural(_ count: Int, _ one: String, _ many: String) -> String {
        "\(count) \(count == 1 ? one : many)"
    }

    /// "0", "0 and 2", "0, 1 and 2".
    static func list(_ items: [String]) -> String {
        guard items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    /// "45 s", "10 min", "2 h" (whole units, rounded down).
    static func duration(_ seconds: Double) -> String {
        let whole = Int(max(0, seconds))
        if whole < 120 { return "\(whole) s" }
        if whole < 2 * 3600 { return "\(whole / 60) min" }
        return "\(whole / 3600) h"
    }
}
