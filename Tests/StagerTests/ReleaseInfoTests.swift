import Foundation
import PlatformModels
import Testing

@testable import Stager

struct ReleaseInfoTests {
    @Test func processTypesAreRead() throws {
        let info = try ReleaseInfo.parse(Data("---\nconfig_vars:\n  A: b\ndefault_process_types:\n  web: python3 app.py\n  worker: ./w\n".utf8))
        #expect(info.defaultProcessTypes == ["web": "python3 app.py", "worker": "./w"])
    }

    @Test func emptyAndNullMeanNoTypes() throws {
        #expect(try ReleaseInfo.parse(Data()).defaultProcessTypes.isEmpty)
        #expect(try ReleaseInfo.parse(Data("--- {}\n".utf8)).defaultProcessTypes.isEmpty)
        #expect(try ReleaseInfo.parse(Data("default_process_types:\n".utf8)).defaultProcessTypes.isEmpty)
    }

    @Test(arguments: [
        "default_process_types: [unclosed",
        "just a string",
        "- a\n- b\n",
        "default_process_types: [a, b]",
        "default_process_types:\n  web: [not, a, string]",
        "default_process_types:\n  'bad name!': x",
    ])
    func malformedOutputIsARefusal(_ text: String) {
        #expect(throws: ReleaseInfo.Invalid.self) { try ReleaseInfo.parse(Data(text.utf8)) }
    }

    @Test func anAliasBombIsRefusedQuickly() {
        // Each level doubles the nodes a naive reader expands: 2^30 at the last level (C11).
        var yaml = "a0: &a0 [x, x]\n"
        for level in 1...30 { yaml += "a\(level): &a\(level) [*a\(level - 1), *a\(level - 1)]\n" }
        yaml += "default_process_types:\n  web: *a30\n"
        let started = ContinuousClock.now
        #expect(throws: ReleaseInfo.Invalid.self) { try ReleaseInfo.parse(Data(yaml.utf8)) }
        // A naive reader would never finish 2^30 nodes; the bound leaves a loaded machine room.
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test func oversizedOutputIsRefused() {
        let big = Data(repeating: UInt8(ascii: "#"), count: Lifecycle.maxReleaseBytes + 1)
        #expect(throws: ReleaseInfo.Invalid.self) { try ReleaseInfo.parse(big) }
    }

    @Test func procfileLines() {
        let parsed = ReleaseInfo.parseProcfile(Data("# processes\nweb: gunicorn app:app -b 0.0.0.0:$PORT\r\n\nworker:   python3 w.py  \nnot a line\n: empty\n".utf8))
        #expect(parsed.types == ["web": "gunicorn app:app -b 0.0.0.0:$PORT", "worker": "python3 w.py"])
        #expect(parsed.invalidLines == [5, 6])
    }

    @Test func stagingEnvironmentKeepsPlatformVariables() {
        let job = StagingJob(buildGUID: "b", appGUID: "a", appName: "my-app", spaceGUID: "s", spaceName: "dev", organizationGUID: "o",
                             organizationName: "org", stack: "cflike-host", packageSHA256: "", cacheSHA256: nil, buildpacks: [],
                             detect: true, environment: ["PATH": "/evil", "GREETING": "hi", "bad-name": "x", "HOME": "/root"],
                             startCommand: nil, memoryMB: 768, diskMB: 2048, timeoutSeconds: 900)
        let vars = StagingEnvironment(job: job).variables
        #expect(vars.contains("PATH=/usr/local/bin:/usr/bin:/bin"))
        #expect(!vars.contains("PATH=/evil"))
        #expect(!vars.contains("HOME=/root"))
        #expect(vars.contains("GREETING=hi"))
        #expect(!vars.contains { $0.hasPrefix("bad-name=") })
        #expect(vars.contains("MEMORY_LIMIT=768m"))
        #expect(vars.contains("CF_STACK=cflike-host"))
        let vcap = vars.first { $0.hasPrefix("VCAP_APPLICATION=") }.map { String($0.dropFirst("VCAP_APPLICATION=".count)) } ?? ""
        let object = (try? JSONSerialization.jsonObject(with: Data(vcap.utf8))) as? [String: Any]
        #expect(object?["application_name"] as? String == "my-app")
    }

    @Test func cacheKeysFollowTheBuildpackNotItsPosition() {
        let a = StagingBuildpack(name: "python", url: "file:///x", displayURL: "file:///x", trusted: true)
        let b = StagingBuildpack(name: nil, url: "https://u:p@example.com/bp#v1", displayURL: "https://***@example.com/bp#v1", trusted: false)
        let c = StagingBuildpack(name: nil, url: "https://u:p@example.com/bp#v2", displayURL: "https://***@example.com/bp#v2", trusted: false)
        #expect(StagingRun.cacheKey(a) != StagingRun.cacheKey(b))
        #expect(StagingRun.cacheKey(b) == StagingRun.cacheKey(c), "a new ref of the same buildpack keeps its cache")
        #expect(StagingRun.cacheKey(a).count == 16)
    }
}
