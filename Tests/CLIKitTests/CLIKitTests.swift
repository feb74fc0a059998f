import ArgumentParser
import Foundation
import Testing

@testable import CLIKit

@Suite struct CLIKitTests {
    @Test func tablesAlignColumns() {
        let text = Output.table(["name", "state"], [["a", "started"], ["longer-name", "stopped"]])
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        let column = lines[1].range(of: "started")!.lowerBound.utf16Offset(in: lines[1])
        #expect(lines[2].range(of: "stopped")!.lowerBound.utf16Offset(in: lines[2]) == column)
    }

    @Test func configIsSavedPrivatelyUnderCFLikeHome() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfh-\(UUID().uuidString)").path
        let env = ["CF_LIKE_HOME": dir]
        var config = TargetConfig()
        config.api = "http://127.0.0.1:9022"
        config.accessToken = "secret-token"
        try config.save(environment: env)
        let attributes = try FileManager.default.attributesOfItem(atPath: TargetConfig.path(environment: env))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try TargetConfig.load(environment: env) == config)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func argumentValidation() throws {
        #expect(throws: (any Error).self) { try SetOrgRoleCommand.parse(["bob", "acme", "Wizard"]) }
        #expect(throws: (any Error).self) { try SetSpaceRoleCommand.parse(["bob", "acme", "dev", "OrgManager"]) }
        _ = try SetOrgRoleCommand.parse(["bob", "acme", "OrgManager"])
        _ = try SetSpaceRoleCommand.parse(["bob", "acme", "dev", "space_developer"])
        #expect(throws: (any Error).self) { try APICommand.parse(["ftp://x"]) }
        #expect(throws: (any Error).self) { try CurlCommand.parse(["v3/apps"]) }
        #expect(throws: (any Error).self) { try CurlCommand.parse(["/v3/apps", "-X", "BREW"]) }
        _ = try CurlCommand.parse(["/v3/apps", "-X", "post", "-d", "{}"])
    }

    @Test func errorsHaveDistinctExitCodes() {
        #expect(CLIError.usage("x").exitCode == 64)
        #expect(CLIError.api("x", hint: nil).exitCode == 1)
        #expect(CLIError.operation("x").exitCode == 2)
        #expect(CLIError.api("bad", hint: "try again").description == "bad\nhint: try again")
    }
}
