import HealthManager
import PlatformModels
import Testing

/// Alerts quote app and buildpack text (exit descriptions, staging errors): what the rules
/// hand the controller is clean, so no app's output can make it refuse the alert set.
struct AlertTextTests {
    let rules = AlertRules()
    let now = 1_000_000.0

    func process(_ guid: String, app: String) -> HealthProcess {
        HealthProcess(guid: guid, appGuid: app, appName: "shop", spaceGuid: "space-1", type: "web", state: "STARTED",
                      instances: 1, memoryMB: 256, diskMB: 1024, stack: "cflinuxfs4", updatedAt: 0)
    }

    static let buildpackOutput = "BuildpackCompileFailed - App staging failed: \u{1B}[31mERROR\u{1B}[0m npm failed\n"
        + "\u{1B}]0;npm\u{07}  at install \u{0}(\u{9B}2Knode)\r\n" + String(repeating: "noise ", count: 700_000)

    func isClean(_ text: String, multiLine: Bool) -> Bool {
        !text.unicodeScalars.contains { s in (s.value < 0x20 && !(multiLine && s == "\n")) || (0x7F...0x9F).contains(s.value) }
    }

    @Test func buildpackAndExitTextIsCleanedBeforeItBecomesAnAlert() throws {
        let crashed = HealthInstance(
            guid: "i0", processGuid: "p1", appGuid: "app-1", index: 0, agentID: "agent-1", state: .crashed, crashCount: 3,
            lastCrash: now - 10, since: now - 10, memoryMB: 256, diskMB: 1024,
            exitDescription: "exited with status 1: \u{1B}[1;31mpanic\u{1B}[0m\nat main\0")
        let snapshot = HealthSnapshot(
            version: 1, asOf: now, processes: [process("p1", app: "app-1")], instances: [crashed], agents: [],
            stagingFailures: [HealthStagingFailure(buildGuid: "b1", appGuid: "app-2", appName: "blog", error: Self.buildpackOutput,
                                                   failedAt: now - 5)])
        let alerts = rules.evaluate(snapshot, now: now)
        #expect(alerts.map(\.name) == ["AppDown", "InstanceCrashLoop", "StagingFailed"])
        for alert in alerts {
            #expect(alert.labels.values.allSatisfy { isClean($0, multiLine: false) && $0.utf8.count <= 1024 })
            #expect(alert.annotations.values.allSatisfy { isClean($0, multiLine: true) && $0.utf8.count <= 8192 })
            #expect(alert == alert.sanitized(), "nothing left for the controller to clean")
        }
        let crash = try #require(alerts.first { $0.name == "InstanceCrashLoop" }).annotations
        #expect(crash["exit_description"] == "exited with status 1: panic at main")
        #expect(crash["description"]?.contains("Last exit: exited with status 1: panic at main.") == true)

        let staging = try #require(alerts.first { $0.name == "StagingFailed" }).annotations
        let error = try #require(staging["error"])
        #expect(error.hasPrefix("BuildpackCompileFailed - App staging failed: ERROR npm failed\n  at install (node)\nnoise noise"))
        #expect(error.utf8.count <= UntrustedText.Field.stagingError.maxBytes)
        #expect(staging["description"]?.hasSuffix("The app keeps running its previous droplet, if it has one.") == true,
                "the error is capped before it goes into the description, so its last sentence survives")
    }
}
