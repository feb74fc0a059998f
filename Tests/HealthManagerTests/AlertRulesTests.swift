import HealthManager
import PlatformModels
import Testing

/// The alert rules as a pure function: each rule fires at its boundary and not just before it,
/// labels stay equal while only counts and times change, and the order does not depend on input order.
struct AlertRulesTests {
    let rules = AlertRules()
    let now = 1_000_000.0

    // MARK: Fixtures

    func healthProcess(_ guid: String, app: String = "app-1", name: String = "shop", type: String = "web",
                       state: String = "STARTED", instances: Int = 1, updatedAt: Double = 0) -> HealthProcess {
        HealthProcess(guid: guid, appGuid: app, appName: name, spaceGuid: "space-1", type: type, state: state,
                      instances: instances, memoryMB: 256, diskMB: 1024, stack: "cflinuxfs4", updatedAt: updatedAt)
    }

    func healthInstance(_ guid: String, of process: String, app: String = "app-1", index: Int = 0,
                        _ state: InstanceState = .running, crashes: Int = 0, lastCrash: Double? = nil, since: Double = 0,
                        exit: String? = nil, placementError: String? = nil) -> HealthInstance {
        HealthInstance(guid: guid, processGuid: process, appGuid: app, index: index,
                       agentID: placementError == nil ? "agent-1" : nil, state: state, crashCount: crashes,
                       lastCrash: lastCrash, since: since, memoryMB: 256, diskMB: 1024, exitDescription: exit,
                       placementError: placementError)
    }

    func healthAgent(_ id: String, heartbeat: Double) -> HealthAgent {
        let capacity = AgentCapacity(memoryMB: 4096, diskMB: 16384, instances: 50)
        return HealthAgent(id: id, capacity: capacity, available: capacity, stacks: ["cflinuxfs4"], lastHeartbeat: heartbeat,
                           draining: false)
    }

    func snapshot(processes: [HealthProcess] = [], instances: [HealthInstance] = [], agents: [HealthAgent] = [],
                  failures: [HealthStagingFailure] = []) -> HealthSnapshot {
        HealthSnapshot(version: 1, asOf: now, processes: processes, instances: instances, agents: agents,
                       stagingFailures: failures)
    }

    func named(_ name: String, _ alerts: [AlertDraft]) -> [AlertDraft] {
        alerts.filter { $0.name == name }
    }

    // MARK: InstanceCrashLoop

    @Test func crashLoopFiresAtTheThresholdWithinTheWindow() throws {
        let alerts = rules.evaluate(snapshot(
            processes: [healthProcess("p1")],
            instances: [healthInstance("i0", of: "p1", index: 0, .crashed, crashes: 3, lastCrash: now - 600, exit: "exited with 1")]),
            now: now)
        let alert = try #require(named("InstanceCrashLoop", alerts).first)
        #expect(alert.labels == ["alertname": "InstanceCrashLoop", "severity": "critical", "app_guid": "app-1",
                                 "app_name": "shop", "space_guid": "space-1", "process_guid": "p1", "process_type": "web"])
        #expect(alert.annotations["exit_description"] == "exited with 1")
        #expect(alert.annotations["crash_count"] == "3")
        #expect(alert.annotations["summary"]?.contains("shop") == true)
        #expect(alert.annotations["description"]?.hasPrefix("Instance 0 of process web of app shop crashed repeatedly") == true,
                "\(alert.annotations["description"] ?? "")")
    }

    @Test func crashLoopNeedsEnoughCrashesAndARecentOne() {
        let below = rules.evaluate(snapshot(
            processes: [healthProcess("p1")],
            instances: [healthInstance("i0", of: "p1", .crashed, crashes: 2, lastCrash: now)]), now: now)
        #expect(named("InstanceCrashLoop", below).isEmpty)

        let old = rules.evaluate(snapshot(
            processes: [healthProcess("p1")],
            instances: [healthInstance("i0", of: "p1", .crashed, crashes: 9, lastCrash: now - 600.5)]), now: now)
        #expect(named("InstanceCrashLoop", old).isEmpty)

        let never = rules.evaluate(snapshot(
            processes: [healthProcess("p1")],
            instances: [healthInstance("i0", of: "p1", .crashed, crashes: 9, lastCrash: nil)]), now: now)
        #expect(named("InstanceCrashLoop", never).isEmpty)
    }

    @Test func crashLoopIsOneAlertPerProcess() throws {
        let alerts = rules.evaluate(snapshot(
            processes: [healthProcess("p1", instances: 3)],
            instances: [
                healthInstance("i0", of: "p1", index: 0, .crashed, crashes: 4, lastCrash: now - 30, exit: "out of memory"),
                healthInstance("i1", of: "p1", index: 1, .running),
                healthInstance("i2", of: "p1", index: 2, .crashed, crashes: 7, lastCrash: now - 5, exit: "exited with 137"),
            ]), now: now)
        let loops = named("InstanceCrashLoop", alerts)
        #expect(loops.count == 1)
        let alert = try #require(loops.first)
        #expect(alert.annotations["crash_count"] == "7")
        // The latest crash speaks for the process.
        #expect(alert.annotations["exit_description"] == "exited with 137")
        #expect(alert.annotations["description"]?.hasPrefix("Instances 0 and 2 of process web of app shop") == true,
                "\(alert.annotations["description"] ?? "")")
    }

    // MARK: AppDown

    @Test func appDownFiresOnceTheGraceIsOver() throws {
        let process = healthProcess("p1", instances: 2, updatedAt: now - 60)
        let crashed = [healthInstance("i0", of: "p1", index: 0, .crashed, since: now - 100),
                       healthInstance("i1", of: "p1", index: 1, .down, since: now - 100)]
        let alert = try #require(named("AppDown", rules.evaluate(snapshot(processes: [process], instances: crashed), now: now)).first)
        #expect(alert.labels == ["alertname": "AppDown", "severity": "critical", "app_guid": "app-1", "app_name": "shop",
                                 "space_guid": "space-1", "process_type": "web"])
        #expect(alert.annotations["summary"] == "App shop (process web) is down")

        // Just inside the grace after a start or scale: not yet.
        let recent = healthProcess("p1", instances: 2, updatedAt: now - 59.9)
        #expect(named("AppDown", rules.evaluate(snapshot(processes: [recent], instances: crashed), now: now)).isEmpty)

        // No instance at all (nothing placed yet) counts as down too.
        #expect(named("AppDown", rules.evaluate(snapshot(processes: [process]), now: now)).count == 1)
    }

    @Test func appDownDoesNotFireWhileOneRunsOrOneIsStillStarting() {
        let process = healthProcess("p1", instances: 2, updatedAt: now - 3600)
        let oneRunning = [healthInstance("i0", of: "p1", index: 0, .crashed), healthInstance("i1", of: "p1", index: 1, .running)]
        #expect(named("AppDown", rules.evaluate(snapshot(processes: [process], instances: oneRunning), now: now)).isEmpty)

        let starting = [healthInstance("i0", of: "p1", index: 0, .starting, since: now - 59.9)]
        #expect(named("AppDown", rules.evaluate(snapshot(processes: [process], instances: starting), now: now)).isEmpty)

        // Starting for the whole grace: it is not coming up.
        let stuck = [healthInstance("i0", of: "p1", index: 0, .starting, since: now - 60)]
        #expect(named("AppDown", rules.evaluate(snapshot(processes: [process], instances: stuck), now: now)).count == 1)
    }

    @Test func appDownIgnoresStoppedAndScaledToZeroProcesses() {
        let stopped = healthProcess("p1", state: "STOPPED", instances: 1, updatedAt: now - 3600)
        let zero = healthProcess("p2", instances: 0, updatedAt: now - 3600)
        #expect(named("AppDown", rules.evaluate(snapshot(processes: [stopped, zero]), now: now)).isEmpty)
    }

    // MARK: AgentLost

    @Test func agentLostFiresPastTheTimeout() throws {
        let atLimit = rules.evaluate(snapshot(agents: [healthAgent("agent-1", heartbeat: now - 10)]), now: now)
        #expect(named("AgentLost", atLimit).isEmpty)

        let past = rules.evaluate(snapshot(agents: [healthAgent("agent-1", heartbeat: now - 10.5)]), now: now)
        let alert = try #require(named("AgentLost", past).first)
        #expect(alert.labels == ["alertname": "AgentLost", "severity": "critical", "agent_id": "agent-1"])
        #expect(alert.annotations["description"]?.contains("agent-1") == true)
    }

    // MARK: InsufficientCapacity

    @Test func insufficientCapacityNamesTheIndexesAndTheReason() throws {
        let process = healthProcess("p1", instances: 3, updatedAt: now - 5)
        let instances = [
            healthInstance("i0", of: "p1", index: 0, .running),
            healthInstance("i1", of: "p1", index: 1, .starting, placementError: "insufficient resources"),
            healthInstance("i2", of: "p1", index: 2, .starting, placementError: "insufficient resources"),
        ]
        let alerts = named("InsufficientCapacity", rules.evaluate(snapshot(processes: [process], instances: instances), now: now))
        #expect(alerts.count == 1)
        let alert = try #require(alerts.first)
        #expect(alert.labels["severity"] == "warning")
        #expect(alert.labels["process_guid"] == "p1")
        let description = try #require(alert.annotations["description"])
        #expect(description.contains("2 instances"))
        #expect(description.contains("1 and 2"))
        #expect(description.contains("insufficient resources"))

        let placed = instances.map { instance -> HealthInstance in
            var placed = instance
            placed.placementError = nil
            return placed
        }
        #expect(named("InsufficientCapacity", rules.evaluate(snapshot(processes: [process], instances: placed), now: now)).isEmpty)
    }

    // MARK: StagingFailed

    @Test func stagingFailedShowsTheLatestFailureWithinTheWindow() throws {
        let failures = [
            HealthStagingFailure(buildGuid: "b1", appGuid: "app-1", appName: "shop", error: "NoAppDetectedError - old",
                                 failedAt: now - 800),
            HealthStagingFailure(buildGuid: "b2", appGuid: "app-1", appName: "shop", error: "BuildpackCompileFailed - new",
                                 failedAt: now - 900),
            HealthStagingFailure(buildGuid: "b3", appGuid: "app-2", appName: "blog", error: "too old", failedAt: now - 900.5),
        ]
        let alerts = named("StagingFailed", rules.evaluate(snapshot(failures: failures), now: now))
        #expect(alerts.count == 1)
        let alert = try #require(alerts.first)
        #expect(alert.labels == ["alertname": "StagingFailed", "severity": "warning", "app_guid": "app-1", "app_name": "shop"])
        #expect(alert.annotations["build_guid"] == "b1")
        #expect(alert.annotations["error"] == "NoAppDetectedError - old")
    }

    // MARK: Deduplication and order

    @Test func labelsStayEqualWhileCountsAndTimesChange() {
        func pass(crashes: Int, at time: Double) -> [AlertDraft] {
            rules.evaluate(snapshot(
                processes: [healthProcess("p1", instances: 1, updatedAt: time - 500)],
                instances: [healthInstance("i0", of: "p1", .crashed, crashes: crashes, lastCrash: time - 1, since: time - 1,
                                           exit: "exited with \(crashes)")],
                agents: [healthAgent("agent-9", heartbeat: time - 20 - Double(crashes))],
                failures: [HealthStagingFailure(buildGuid: "b\(crashes)", appGuid: "app-1", appName: "shop",
                                                error: "failed \(crashes)", failedAt: time - 1)]),
                now: time)
        }
        let first = pass(crashes: 3, at: now)
        let second = pass(crashes: 8, at: now + 42)
        #expect(first.map(\.name) == ["AgentLost", "AppDown", "InstanceCrashLoop", "StagingFailed"])
        #expect(first.map(\.labels) == second.map(\.labels))
        #expect(first.map(\.annotations) != second.map(\.annotations))
    }

    @Test func everyAlertHasTheRequiredLabelsAndAnnotations() {
        let alerts = rules.evaluate(snapshot(
            processes: [healthProcess("p1", updatedAt: 0)],
            instances: [healthInstance("i0", of: "p1", .crashed, crashes: 5, lastCrash: now, placementError: "no agent with stack x")],
            agents: [healthAgent("a", heartbeat: 0)],
            failures: [HealthStagingFailure(buildGuid: "b", appGuid: "app-1", appName: "shop", error: "e", failedAt: now)]),
            now: now)
        #expect(Set(alerts.map(\.name)) == ["AgentLost", "AppDown", "InstanceCrashLoop", "InsufficientCapacity", "StagingFailed"])
        for alert in alerts {
            #expect(alert.labels["severity"] != nil)
            #expect(alert.annotations["summary"]?.isEmpty == false)
            #expect(alert.annotations["description"]?.isEmpty == false)
        }
    }

    @Test func orderDoesNotDependOnInputOrder() {
        let processes = (0..<6).map { healthProcess("p\($0)", app: "app-\($0)", name: "app\($0)", instances: 1, updatedAt: 0) }
        let instances = (0..<6).map { healthInstance("i\($0)", of: "p\($0)", app: "app-\($0)", .crashed, crashes: 5, lastCrash: now) }
        let agents = (0..<4).map { healthAgent("agent-\($0)", heartbeat: 0) }
        let failures = (0..<4).map {
            HealthStagingFailure(buildGuid: "b\($0)", appGuid: "app-\($0)", appName: "app\($0)", error: "e", failedAt: now)
        }
        let forward = rules.evaluate(snapshot(processes: processes, instances: instances, agents: agents, failures: failures), now: now)
        let backward = rules.evaluate(snapshot(processes: processes.reversed(), instances: instances.reversed(),
                                               agents: agents.reversed(), failures: failures.reversed()), now: now)
        #expect(forward == backward)
        #expect(forward.count == 6 + 6 + 4 + 4)
        #expect(forward.map(\.name) == forward.map(\.name).sorted())
        let agentIDs = forward.filter { $0.name == "AgentLost" }.compactMap { $0.labels["agent_id"] }
        #expect(agentIDs == ["agent-0", "agent-1", "agent-2", "agent-3"])
    }
}
