import Foundation
import PlatformModels
import Testing

@testable import ExecutionAgent

@Suite struct InstanceEnvironmentTests {
    static func assignment(env: [String: String] = [:], command: String = "python3 -m http.server $PORT") -> InstanceAssignment {
        InstanceAssignment(
            instanceGUID: "6f2d1c1e-3b1a-4a53-9d43-0d0c7e3f9a10", appGUID: "a1b2c3d4-0000-4000-8000-000000000001", appName: "hello",
            processGUID: "a1b2c3d4-0000-4000-8000-000000000001", processType: "web", processVersion: "v1", index: 2,
            droplet: DropletRef(guid: "d", sha256: String(repeating: "a", count: 64), downloadPath: "/internal/v1/droplets/d/download"),
            command: command, memoryMB: 128, diskMB: 512, fileDescriptors: 16384,
            environment: env,
            vcapApplication: ["application_name": .string("hello"), "space_name": .string("dev"),
                              "application_uris": .array([.string("hello.apps.localhost")])],
            vcapServices: "{}")
    }

    static let placement = InstanceEnvironment.Placement(
        hostAddress: "192.0.2.10", hostPort: 61003, containerAddress: "10.254.0.6", startedAt: Date(timeIntervalSince1970: 1_800_000_000))

    func value(_ env: [String], _ name: String) -> String? {
        env.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    @Test func platformVariablesFollowTheContract() throws {
        let env = InstanceEnvironment(assignment: Self.assignment(), placement: Self.placement).variables
        #expect(value(env, "PORT") == "8080")
        #expect(value(env, "HOME") == "/home/vcap/app")
        #expect(value(env, "TMPDIR") == "/home/vcap/tmp")
        #expect(value(env, "USER") == "vcap")
        #expect(value(env, "LANG") == "en_US.UTF-8")
        #expect(value(env, "MEMORY_LIMIT") == "128M")
        #expect(value(env, "CF_INSTANCE_INDEX") == "2")
        #expect(value(env, "CF_INSTANCE_GUID") == "6f2d1c1e-3b1a-4a53-9d43-0d0c7e3f9a10")
        #expect(value(env, "CF_INSTANCE_IP") == "192.0.2.10")
        #expect(value(env, "CF_INSTANCE_INTERNAL_IP") == "10.254.0.6")
        #expect(value(env, "CF_INSTANCE_PORT") == "61003")
        #expect(value(env, "CF_INSTANCE_ADDR") == "192.0.2.10:61003")
        #expect(value(env, "VCAP_APP_HOST") == "0.0.0.0")
        #expect(value(env, "VCAP_APP_PORT") == "8080")
        #expect(value(env, "VCAP_SERVICES") == "{}")
        let vcap = try #require(value(env, "VCAP_APPLICATION"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(vcap.utf8)) as? [String: Any])
        #expect(object["application_name"] as? String == "hello")
        #expect(object["instance_index"] as? Int == 2)
        #expect(object["instance_id"] as? String == "6f2d1c1e-3b1a-4a53-9d43-0d0c7e3f9a10")
        #expect(object["application_uris"] as? [String] == ["hello.apps.localhost"])
        let limits = try #require(object["limits"] as? [String: Any])
        #expect(limits["mem"] as? Int == 128)
        #expect(limits["disk"] as? Int == 512)
        #expect(object["process_type"] as? String == "web")
    }

    @Test func userVariablesComeLastAndCannotOverridePlatformOnes() {
        let env = InstanceEnvironment(assignment: Self.assignment(env: [
            "GREETING": "hello world", "PORT": "1", "CF_INSTANCE_INDEX": "9", "VCAP_APPLICATION": "{}", "BAD-NAME": "x",
            "9LIVES": "x", "WITH_NUL": "a\0b",
        ]), placement: Self.placement).variables
        #expect(value(env, "GREETING") == "hello world")
        #expect(env.last == "GREETING=hello world")
        #expect(env.filter { $0.hasPrefix("PORT=") } == ["PORT=8080"])
        #expect(value(env, "CF_INSTANCE_INDEX") == "2")
        #expect(!env.contains { $0.hasPrefix("BAD-NAME=") || $0.hasPrefix("9LIVES=") || $0.hasPrefix("WITH_NUL=") })
    }

    @Test func theStartCommandRunsUnderTheLauncherAsAnArgumentNotAsScriptText() {
        let command = "echo \"$PORT\"; exit 3"
        let args = InstanceEnvironment(assignment: Self.assignment(command: command), placement: Self.placement).arguments
        #expect(args.count == 5)
        #expect(args[0] == "/bin/bash")
        #expect(args[1] == "-c")
        #expect(args[2] == InstanceEnvironment.launcher)
        #expect(args[4] == command)
        #expect(!args[2].contains(command))
    }

    @Test func launcherPassesTheCommandsStatusAndSourcesProfileScripts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("launcher-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The launcher's fixed paths are rewritten to the scratch directory so it runs on the host.
        let script = InstanceEnvironment.launcher.replacingOccurrences(of: "/home/vcap", with: dir)
        try FileManager.default.createDirectory(atPath: dir + "/app/.profile.d", withIntermediateDirectories: true)
        try Data("export FROM_PROFILE=yes\n".utf8).write(to: URL(fileURLWithPath: dir + "/app/.profile.d/a.sh"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script, "cf-like-launch", "echo \"$FROM_PROFILE $(pwd)\" > out; exit 7"]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 7)
        let out = try String(contentsOfFile: dir + "/app/out", encoding: .utf8)
        #expect(out == "yes \(dir)/app\n")
    }

    @Test func launcherForwardsSIGTERMToTheCommand() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("launcher-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/app", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = InstanceEnvironment.launcher.replacingOccurrences(of: "/home/vcap", with: dir)
        // Children of this test process inherit its blocked signal mask; start bash with an empty
        // one, as the container shim does for a container's processes.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv('/bin/bash', ['bash'] + sys.argv[1:])",
                             "-c", script, "cf-like-launch", "trap 'echo got-term > term; exit 0' TERM; touch ready; while :; do sleep 0.05; done"]
        try process.run()
        let ready = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: dir + "/app/ready"), Date() < ready { usleep(20_000) }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect((try? String(contentsOfFile: dir + "/app/term", encoding: .utf8)) == "got-term\n")
    }
}

@Suite struct LogBatchingTests {
    func line(_ size: Int) -> LogLine {
        LogLine(appGUID: "a", timestamp: 0, sourceType: "APP/PROC/WEB", sourceInstance: "0", messageType: .out,
                message: String(repeating: "x", count: size))
    }

    @Test func batchesStayWithinTheControllersLimits() {
        #expect(ExecutionAgent.batches(of: []).isEmpty)
        let many = ExecutionAgent.batches(of: Array(repeating: line(10), count: 2500))
        #expect(many.map(\.count) == [1000, 1000, 500])
        // 64 KiB lines: about 60 per 4 MiB batch, never one over.
        let big = ExecutionAgent.batches(of: Array(repeating: line(65536), count: 200))
        #expect(big.allSatisfy { $0.reduce(0) { $0 + $1.message.utf8.count } <= 4 << 20 })
        #expect(big.reduce(0) { $0 + $1.count } == 200)
        #expect(big.count == 4)
    }
}
