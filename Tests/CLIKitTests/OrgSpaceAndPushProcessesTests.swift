import ArgumentParser
import Foundation
import PlatformModels
import Testing

@testable import CLIKit

@Suite struct OrgSpaceAdminCLITests {
    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch let error as CLIError { return error.description } catch { return "\(error)" }
    }

    @Test func deleteArgumentsAreParsed() throws {
        let org = try DeleteOrgCommand.parse(["acme", "-f"])
        #expect(org.name == "acme" && org.f)
        let space = try DeleteSpaceCommand.parse(["dev", "-o", "acme"])
        #expect(space.name == "dev" && space.o == "acme" && !space.f)
        #expect(try DeleteSpaceCommand.parse(["dev"]).o == nil)
        #expect(throws: (any Error).self) { try DeleteOrgCommand.parse([]) }
        #expect(throws: (any Error).self) { try DeleteSpaceCommand.parse(["dev", "-o"]) }
        #expect(throws: (any Error).self) { try DeleteOrgCommand.parse(["acme", "--force-everything"]) }
    }

    @Test func confirmationRefusesWithoutATerminal() throws {
        #expect(try Confirmation.confirm("Really?", force: true, command: "delete-org", read: { _ in nil }))
        #expect(message { _ = try Confirmation.confirm("Really?", force: false, command: "delete-org", read: { _ in nil }) }
                == "delete-org needs -f when no terminal is attached to confirm on")
        do {
            _ = try Confirmation.confirm("Really?", force: false, command: "delete-space", read: { _ in nil })
            Issue.record("expected a usage error")
        } catch let error as CLIError {
            #expect(error.exitCode == 64)
        }
        var asked = ""
        #expect(try Confirmation.confirm("Really delete?", force: false, command: "x", read: { asked = $0; return "Y" }))
        #expect(asked == "Really delete? [yN]: ")
        #expect(try Confirmation.confirm("Really?", force: false, command: "x", read: { _ in " yes " }))
        #expect(try !Confirmation.confirm("Really?", force: false, command: "x", read: { _ in "" }))
        #expect(try !Confirmation.confirm("Really?", force: false, command: "x", read: { _ in "nope" }))
    }

    @Test func roleNamesAreCFsOrTheAPIs() throws {
        _ = try UnsetOrgRoleCommand.parse(["alice", "acme", "OrgManager"])
        _ = try UnsetOrgRoleCommand.parse(["alice", "acme", "organization_auditor"])
        _ = try UnsetSpaceRoleCommand.parse(["alice", "acme", "dev", "spacedeveloper"])
        _ = try UnsetSpaceRoleCommand.parse(["alice", "acme", "dev", "space_manager"])
        #expect(try SetOrgRoleCommand.roleType("BillingManager") == "organization_billing_manager")
        #expect(try SetSpaceRoleCommand.roleType("SpaceAuditor") == "space_auditor")
        #expect(throws: (any Error).self) { try UnsetOrgRoleCommand.parse(["alice", "acme", "SpaceDeveloper"]) }
        #expect(throws: (any Error).self) { try UnsetSpaceRoleCommand.parse(["alice", "acme", "dev", "OrgManager"]) }
        #expect(throws: (any Error).self) { try UnsetSpaceRoleCommand.parse(["alice", "acme", "SpaceDeveloper"]) }
        do {
            _ = try UnsetOrgRoleCommand.parse(["alice", "acme", "Boss"])
            Issue.record("expected a validation error")
        } catch {
            #expect(UnsetOrgRoleCommand.message(for: error).contains("unknown org role 'Boss': use OrgManager, OrgAuditor or OrgUser"))
        }
        do {
            _ = try UnsetSpaceRoleCommand.parse(["alice", "acme", "dev", "Boss"])
            Issue.record("expected a validation error")
        } catch {
            #expect(UnsetSpaceRoleCommand.message(for: error).contains("unknown space role 'Boss'"))
        }
    }

    @Test func passwordIsTypedTwiceOrReadFromAFile() throws {
        var prompts: [String] = []
        var answers = ["s3cret-pass", "s3cret-pass"]
        let typed = try PasswordInput.newPassword(for: "alice", file: nil, readSecret: { prompts.append($0); return answers.removeFirst() })
        #expect(typed == "s3cret-pass")
        #expect(prompts == ["New password for alice: ", "Retype the new password: "])

        answers = ["one-password", "another-one"]
        #expect(message { _ = try PasswordInput.newPassword(for: "alice", file: nil, readSecret: { _ in answers.removeFirst() }) }
                == "the passwords do not match; nothing was changed")
        #expect(message { _ = try PasswordInput.newPassword(for: "alice", file: nil, readSecret: { _ in nil }) }
                == "a password is required: --password-file F, or run on a terminal to be prompted")
        #expect(message { _ = try PasswordInput.newPassword(for: "alice", file: nil, readSecret: { _ in "" }) }
                == "the password must not be empty")

        let file = NSTemporaryDirectory() + "pw-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "from-the-file\nignored\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try PasswordInput.newPassword(for: "alice", file: file, readSecret: { _ in Issue.record("no prompt"); return nil })
                == "from-the-file")
        try "\nsecond-line\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(message { _ = try PasswordInput.fromFile(file) } == "cannot read a password from \(file)")
        #expect(message { _ = try PasswordInput.fromFile(file + ".missing") } == "cannot read a password from \(file).missing")

        let passwd = try PasswdCommand.parse(["alice", "--password-file", "alice.pw"])
        #expect(passwd.name == "alice" && passwd.passwordFile == "alice.pw")
        #expect(throws: (any Error).self) { try PasswdCommand.parse([]) }
    }

    @Test func everyCommandHelpHasAnExample() {
        let commands: [any ParsableCommand.Type] = [
            DeleteOrgCommand.self, DeleteSpaceCommand.self, PasswdCommand.self, UnsetOrgRoleCommand.self, UnsetSpaceRoleCommand.self,
            PushCommand.self, UsersCommand.self, CreateUserCommand.self, DeleteUserCommand.self, CreateOrgCommand.self,
            CreateSpaceCommand.self, SetOrgRoleCommand.self, SetSpaceRoleCommand.self, DrainCommand.self, UndrainCommand.self,
        ]
        for command in commands {
            #expect(command.helpMessage().contains("Example:"), "\(command.configuration.commandName ?? "?")")
        }
    }
}

@Suite struct ManifestProcessesTests {
    static let manifest = """
        applications:
        - name: hello
          instances: 1
          memory: 128M
          processes:
          - type: web
            instances: 2
            memory: 256M
            disk_quota: 1G
            command: ./serve
            health-check-type: http
            health-check-http-endpoint: /ready
            timeout: 45
          - type: worker
            instances: 0
            health-check-type: process
        """

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch let error as CLIError { return error.description } catch { return "\(error)" }
    }

    @Test func parsesProcesses() throws {
        let app = try AppManifest.parse(Self.manifest)[0]
        #expect(app.processes.map(\.type) == ["web", "worker"])
        let web = app.processes[0]
        #expect(web.instances == 2 && web.memoryMB == 256 && web.diskMB == 1024 && web.command == "./serve")
        #expect(web.healthCheckType == "http" && web.healthCheckEndpoint == "/ready" && web.timeout == 45)
        #expect(web.updatesProcess && web.scales)
        let worker = app.processes[1]
        #expect(worker.instances == 0 && worker.memoryMB == nil && worker.healthCheckType == "process")
        #expect(worker.updatesProcess && worker.scales)
        #expect(app.instances == 1 && app.memoryMB == 128)
    }

    @Test func badProcessesAreNamed() {
        func parse(_ processes: String) -> String {
            message { _ = try AppManifest.parse("applications:\n- name: a\n  processes:\n" + processes) }
        }
        #expect(parse("  - instances: 2\n") == "every entry of processes needs a type")
        #expect(parse("  - type: web\n    instances: two\n") == "processes[web].instances must be a whole number, not 'two'")
        #expect(parse("  - type: web\n    instances: -1\n") == "processes[web].instances must be a whole number, not '-1'")
        #expect(parse("  - type: web\n    memory: lots\n") == "processes[web].memory must be a size like 256M or 1G, not 'lots'")
        #expect(parse("  - type: web\n    disk_quota: 0\n") == "processes[web].disk_quota must be a size like 256M or 1G, not '0'")
        #expect(parse("  - type: web\n    health-check-type: tcp\n")
                == "processes[web].health-check-type must be port, http or process, not 'tcp'")
        #expect(parse("  - type: web\n    health-check-http-endpoint: ready\n")
                == "processes[web].health-check-http-endpoint must start with '/', not 'ready'")
        #expect(parse("  - type: web\n    timeout: 0\n") == "processes[web].timeout must be a number of seconds, not '0'")
        #expect(parse("  - type: web\n  - type: web\n") == "processes lists the type 'web' more than once")
        #expect(parse("  - type: we b\n") == "process type 'we b' must be letters, digits, - and _")
        #expect(message { _ = try AppManifest.parse("applications:\n- name: a\n  processes: web\n") }
                == "processes must be a list of entries with a type")
    }

    @Test func flagsWinOverTheWebEntry() throws {
        let dir = NSTemporaryDirectory() + "manifest-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.manifest.write(toFile: dir + "/manifest.yml", atomically: true, encoding: .utf8)

        let (plain, _) = try PushCommand.parse([]).settings(currentDirectory: dir)
        #expect(plain.processes[0].instances == 2 && plain.processes[0].memoryMB == 256)

        let (s, _) = try PushCommand.parse(["-i", "3", "-c", "./other"]).settings(currentDirectory: dir)
        let web = s.processes[0]
        #expect(s.instances == 3 && s.command == "./other")
        #expect(web.instances == nil && web.command == nil)
        #expect(web.memoryMB == 256 && web.healthCheckEndpoint == "/ready")
        #expect(s.processes[1].instances == 0)  // flags only ever concern web

        let web2 = PushCommand.webSettings(s)
        #expect(web2.type == "web" && web2.instances == 3 && web2.memoryMB == 128 && web2.command == "./other")
    }

    @Test func missingProcessTypesAreExplained() {
        #expect(PushCommand.missingProcessesMessage(["worker", "clock"], have: ["web"])
                == "the manifest's processes name 'worker', 'clock', but the app has only web (the platform runs web processes only)")
    }

    @Test func interruptHoldsDuringCommitAndRecordsWhatWasMade() async throws {
        let interrupt = PushInterrupt()
        let task = Task<Void, any Error> { try await Task.sleep(for: .seconds(30)) }
        interrupt.watch(task)
        interrupt.setAppName("hello")
        interrupt.creating()
        interrupt.created(app: "app-guid")
        interrupt.creatingRoute(host: "hello", path: "", domain: "domain-guid")
        interrupt.created(route: "route-guid", url: "hello.apps.localhost")
        #expect(interrupt.createdApp == "app-guid" && interrupt.createdRoutes.map(\.url) == ["hello.apps.localhost"])
        #expect(interrupt.pendingRoute == nil)
        try interrupt.enter(.committing)
        interrupt.fire()
        #expect(interrupt.fired && !task.isCancelled)  // held while the app is being updated
        #expect(throws: CancellationError.self) { try interrupt.enter(.started) }
        #expect(interrupt.phase == .started)
        task.cancel()
    }

    @Test func interruptCancelsThePushTaskWhilePreparing() async throws {
        let interrupt = PushInterrupt()
        let task = Task<Void, any Error> { try await Task.sleep(for: .seconds(30)) }
        interrupt.watch(task)
        interrupt.fire()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(throws: CancellationError.self) { try interrupt.enter(.committing) }
        #expect(interrupt.phase == .preparing)  // nothing of the app was changed: undo what was made

        // A signal that comes before the task is known cancels it as soon as it is.
        let early = PushInterrupt()
        early.fire()
        let later = Task<Void, any Error> { try await Task.sleep(for: .seconds(30)) }
        early.watch(later)
        await #expect(throws: CancellationError.self) { try await later.value }
    }
}
