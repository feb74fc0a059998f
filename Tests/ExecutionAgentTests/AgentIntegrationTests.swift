import Containers
import Foundation
import NIOCore
import NIOPosix
import PlatformModels
import Testing

@testable import ExecutionAgent

/// The execution agent on real runc, shim, overlay, namespaces and nftables (as root).
@Suite(.serialized) struct AgentIntegrationTests {
    @Test func startsADropletReachableWithTheContractEnvironmentAndStopsItCleanly() async throws {
        try await AgentLab.with("env", slot: 1) { lab in
            let assignment = lab.assignment(env: ["GREETING": "hello"])
            let report = try await lab.start(assignment)
            #expect(report.state == .running)
            let hostPort = try #require(report.hostPort)
            #expect((40100...40199).contains(hostPort))

            let env = try await lab.get(report, "/env")
            #expect(env["PORT"] as? String == "8080")
            #expect(env["HOME"] as? String == "/home/vcap/app")
            #expect(env["TMPDIR"] as? String == "/home/vcap/tmp")
            #expect(env["MEMORY_LIMIT"] as? String == "128M")
            #expect(env["CF_INSTANCE_GUID"] as? String == assignment.instanceGUID)
            #expect(env["CF_INSTANCE_INTERNAL_IP"] as? String == report.containerAddress)
            #expect(env["CF_INSTANCE_PORT"] as? String == String(hostPort))
            #expect(env["GREETING"] as? String == "hello")
            #expect((env["VCAP_APPLICATION"] as? String)?.contains("\"application_name\":\"lab-app\"") == true)

            // Logs: the app's stdout and stderr and the agent's own lines, with sources.
            _ = try await lab.get(report, "/log?n=3")
            let deadline = Date().addingTimeInterval(20)
            while !lab.logs.all.contains(where: { $0.message == "line 2" }), Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
            let lines = lab.logs.all.filter { $0.appGUID == assignment.appGUID }
            #expect(lines.contains { $0.message == "app starting on port 8080" && $0.sourceType == "APP/PROC/WEB" && $0.messageType == .out })
            #expect(lines.contains { $0.message == "to stderr" && $0.messageType == .err })
            #expect(lines.contains { $0.message == "line 2" && $0.sourceInstance == "0" })
            #expect(lines.contains { $0.sourceType == "CELL" && $0.message.contains("healthy") })

            // Stop: the launcher passes TERM on, so python exits well before the grace period ends.
            // Judged by how it ended (TERM's 143, not the 137 of the agent's SIGKILL after the 3 s
            // grace period), not by the clock: a loaded machine may take a while to stop it.
            let instanceDir = lab.instanceDirectory(assignment.instanceGUID)
            let cgroup = lab.cgroupPath(assignment.instanceGUID)
            let stopped = lab.agent.expectEvent(where: { $0.type == .stopped })
            await lab.agent.converge(to: [])
            let stop = try await stopped.wait(timeout: .seconds(30))
            #expect(stop.exitStatus == 143, "\(stop)")
            #expect(await lab.agent.reports().isEmpty)
            #expect(!FileManager.default.fileExists(atPath: instanceDir))
            #expect(!CgroupReader().exists(cgroupPath: cgroup))
            let mounts = try MountTable.current()
            #expect(!mounts.contains { $0.hasPrefix(lab.base) })
            let links = try AgentLab.run("/usr/sbin/ip", ["-o", "link"])
            #expect(!links.contains(lab.config.interfacePrefix))
            let namespaces = try AgentLab.run("/usr/sbin/ip", ["netns", "list"])
            #expect(!namespaces.contains(lab.config.interfacePrefix))
        }
    }

    @Test func instancesAreLockedDown() async throws {
        // A listener on the host that no instance may reach (stands in for the CC and PostgreSQL).
        let hostService = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "0.0.0.0", port: 0).get()
        defer { hostService.close(promise: nil) }
        let servicePort = try #require(hostService.localAddress?.port)
        // With a network pool: ready attachments must be confined like those made on demand.
        try await AgentLab.with("lock", slot: 2, extraConfig: "network_pool_size: 2") { lab in
            let first = lab.assignment(index: 0)
            _ = try await lab.start(first)
            let other = lab.assignment(index: 1)
            _ = try await lab.start(other, also: [first])
            let reports = await lab.agent.reports()
            let bReport = try #require(reports.first { $0.instanceGUID == other.instanceGUID })
            let aReport = try #require(reports.first { $0.instanceGUID != other.instanceGUID })
            let gateway = try #require(bReport.containerAddress.map { address -> String in
                var parts = address.split(separator: ".").map { Int($0) ?? 0 }
                parts[3] -= 1
                return parts.map(String.init).joined(separator: ".")
            })
            let targets = ["\(gateway):\(servicePort)", "127.0.0.1:\(servicePort)", "\(bReport.containerAddress ?? ""):8080",
                           "\(gateway):\(bReport.hostPort ?? 0)"]
            let query = targets.map { "t=\($0)" }.joined(separator: "&")
            let probe = try await lab.get(aReport, "/probe?\(query)")
            #expect(probe["uid"] as? Int == 2000)
            #expect(probe["cwd"] as? String == "/home/vcap/app")
            let status = try #require(probe["status"] as? [String: String])
            #expect(status["CapEff"] == "0000000000000000")
            #expect(status["NoNewPrivs"] == "1")
            #expect(status["Seccomp"] == "2")
            #expect(probe["mount"] as? String == "errno:1")          // E1
            #expect(probe["unshare"] as? String == "errno:1")        // E1
            #expect((probe["mknod"] as? String)?.hasPrefix("errno:") == true)  // E5
            #expect((probe["pids"] as? Int ?? 99) <= 3)              // E2: only the instance's own processes
            #expect(probe["host_proc_1_environ"] as? String != "/sbin/init")
            let connect = try #require(probe["connect"] as? [String: String])
            for target in targets {                                   // E10
                #expect(connect[target] != "connected", "instance reached \(target)")
            }
        }
    }

    @Test func crashesAreReportedWithExitStatusAndOOMAsOutOfMemory() async throws {
        try await AgentLab.with("crash", slot: 3) { lab in
            let assignment = lab.assignment()
            let report = try await lab.start(assignment)
            let crashed = lab.agent.expectEvent(where: { $0.type == .crashed })
            _ = try? await lab.get(report, "/crash")
            let event = try await crashed.wait(timeout: .seconds(20))
            #expect(event.exitStatus == 3)
            #expect(event.reason == "exited with status 3")
            #expect(event.crashCount == 1)
            let after = try #require(await lab.agent.reports().first { $0.instanceGUID == assignment.instanceGUID })
            #expect(after.state == .crashed)
            #expect(after.hostPort == nil)

            let hog = lab.assignment(index: 1, memoryMB: 64)
            let hogReport = try await lab.start(hog, also: [assignment])
            let oom = lab.agent.expectEvent(where: { $0.type == .crashed && $0.instanceGUID == hog.instanceGUID })
            _ = try? await AgentLab.curl("http://\(hogReport.containerAddress ?? ""):8080/oom", maxSeconds: 3)
            let oomEvent = try await oom.wait(timeout: .seconds(30))
            #expect(oomEvent.reason == "out of memory")
            #expect(oomEvent.exitStatus == 137)
        }
    }

    @Test func healthCheckTypes() async throws {
        try await AgentLab.with("health", slot: 4) { lab in
            // http: a 200 endpoint passes.
            let web = lab.assignment(health: HealthCheckSpec(type: .http, endpoint: "/", timeoutSeconds: 20))
            _ = try await lab.start(web)
            // process: no listener needed.
            let sleeper = lab.assignment(index: 1, command: "sleep 600", health: HealthCheckSpec(type: .process))
            let sleeping = try await lab.start(sleeper, also: [web])
            #expect(sleeping.state == .running)
            // http on an endpoint answering 500: never healthy, crashed after the start timeout.
            let failing = lab.assignment(index: 2, health: HealthCheckSpec(type: .http, endpoint: "/fail", timeoutSeconds: 2))
            let waiter = lab.agent.expectEvent(where: { $0.instanceGUID == failing.instanceGUID })
            await lab.agent.converge(to: [web, sleeper, failing])
            let event = try await waiter.wait(timeout: .seconds(30))
            #expect(event.type == .crashed)
            #expect(event.reason.hasPrefix("Instance never healthy after 2s: Failed to get HTTP 200 from /fail: got 500"))
            // The healthy ones are untouched.
            let states = await lab.agent.reports().map(\.state)
            #expect(states.filter { $0 == .running }.count == 2)
        }
    }

    @Test func aForkBombIsContainedAndTheAgentStaysResponsive() async throws {
        try await AgentLab.with("forkbomb", slot: 5) { lab in
            let assignment = lab.assignment(command: "exec python3 server.py")
            let report = try await lab.start(assignment)
            _ = try? await lab.get(report, "/forkbomb")
            try await Task.sleep(for: .seconds(2))
            let stats = try CgroupReader().stats(cgroupPath: lab.cgroupPath(assignment.instanceGUID))
            #expect(stats.pidsLimit == 128)
            #expect((stats.pidsCurrent ?? 0) <= 128)
            // The agent still answers and stops the instance (SIGKILL after the grace period).
            let stopped = lab.agent.expectEvent(where: { $0.type == .stopped })
            await lab.agent.converge(to: [])
            _ = try await stopped.wait(timeout: .seconds(30))
            #expect(await lab.agent.reports().isEmpty)
        }
    }

    @Test func aRestartedAgentAdoptsRunningContainers() async throws {
        try await AgentLab.with("adopt", slot: 6) { lab in
            let assignment = lab.assignment()
            let report = try await lab.start(assignment)
            // The first agent goes away without stopping anything (as on SIGTERM or a crash).
            lab.loops.cancel()
            let second = try lab.restartedAgent()
            try await second.prepare()
            let adopted = try #require(await second.reports().first)
            #expect(adopted.instanceGUID == assignment.instanceGUID)
            #expect(adopted.state == .running)
            #expect(adopted.hostPort == report.hostPort)
            #expect(adopted.containerAddress == report.containerAddress)
            #expect(try await lab.get(report, "/")["ok"] as? Bool == true)
            // The second agent is now in charge: it stops the instance.
            await second.stopAll()
            #expect(await second.reports().isEmpty)
        }
    }
}
