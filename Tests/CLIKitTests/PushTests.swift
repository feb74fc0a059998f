import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels
import Testing

@testable import CLIKit

@Suite struct ManifestTests {
    static let manifest = """
        applications:
        - name: web
          path: site
          memory: 256M
          disk_quota: 1G
          instances: 2
          buildpacks: [python, https://example.com/bp.git#v1]
          command: python app.py
          env:
            GREETING: ((greeting))
            EMPTY:
          routes:
          - route: web.apps.localhost
          health-check-type: http
          health-check-http-endpoint: /health
          timeout: 90
        - name: worker
          no-route: true
          buildpack: binary
        """

    @Test func parsesCFAttributes() throws {
        let apps = try AppManifest.parse(Self.manifest, vars: ["greeting": "hi"])
        #expect(apps.count == 2)
        let web = apps[0]
        #expect(web.name == "web" && web.path == "site")
        #expect(web.memoryMB == 256 && web.diskMB == 1024 && web.instances == 2)
        #expect(web.buildpacks == ["python", "https://example.com/bp.git#v1"])
        #expect(web.command == "python app.py")
        #expect(web.env == ["GREETING": "hi", "EMPTY": ""])
        #expect(web.routes == ["web.apps.localhost"])
        #expect(web.healthCheckType == "http" && web.healthCheckEndpoint == "/health" && web.timeout == 90)
        #expect(apps[1].noRoute && apps[1].buildpacks == ["binary"])
    }

    @Test func missingVariablesAreNamed() throws {
        #expect(throws: (any Error).self) { try AppManifest.parse(Self.manifest) }
        do {
            _ = try AppManifest.substitute("a: ((one)) b: ((two)) c: ((one))", vars: [:])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "Expected to find variables: one, two")
        }
        #expect(try AppManifest.substitute("x((a))y(( b ))z", vars: ["a": "1", "b": "2"]) == "x1y2z")
    }

    @Test func sizes() throws {
        #expect(try AppManifest.megabytes("512", field: "m") == 512)
        #expect(try AppManifest.megabytes("512MB", field: "m") == 512)
        #expect(try AppManifest.megabytes("2g", field: "m") == 2048)
        #expect(throws: (any Error).self) { try AppManifest.megabytes("lots", field: "m") }
        #expect(throws: (any Error).self) { try AppManifest.megabytes("0M", field: "m") }
    }

    @Test func selection() throws {
        let apps = try AppManifest.parse(Self.manifest, vars: ["greeting": "hi"])
        #expect(try AppManifest.select(apps, name: "worker").name == "worker")
        #expect(throws: (any Error).self) { try AppManifest.select(apps, name: nil) }
        #expect(throws: (any Error).self) { try AppManifest.select(apps, name: "nope") }
        #expect(try AppManifest.select([apps[0]], name: "renamed").name == "renamed")
    }

    @Test func flagsOverrideTheManifest() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/site", withIntermediateDirectories: true)
        try Self.manifest.write(toFile: dir + "/manifest.yml", atomically: true, encoding: .utf8)
        let push = try PushCommand.parse(["web", "-m", "1G", "-i", "3", "-b", "staticfile", "--var", "greeting=yo", "-u", "port"])
        let (s, path) = try push.settings(currentDirectory: dir)
        #expect(s.memoryMB == 1024 && s.instances == 3 && s.buildpacks == ["staticfile"] && s.healthCheckType == "port")
        #expect(s.diskMB == 1024 && s.command == "python app.py" && s.env["GREETING"] == "yo" && s.timeout == 90)
        #expect(path == dir + "/site")

        let ignored = try PushCommand.parse(["web", "--no-manifest", "-p", "site"])
        let (plain, plainPath) = try ignored.settings(currentDirectory: dir)
        #expect(plain.memoryMB == nil && plain.buildpacks == nil && plainPath == dir + "/site")
    }

    @Test func pushArgumentValidation() throws {
        #expect(throws: (any Error).self) { try PushCommand.parse(["a", "-u", "tcp"]) }
        #expect(throws: (any Error).self) { try PushCommand.parse(["a", "-f", "m.yml", "--no-manifest"]) }
        #expect(throws: (any Error).self) { try PushCommand.parse(["a", "--var", "novalue"]) }
        #expect(throws: (any Error).self) { try PushCommand.parse(["a", "-m", "big"]) }
        #expect(throws: (any Error).self) { try ScaleCommand.parse(["a", "-i", "-1"]) }
        #expect(throws: (any Error).self) { try UpdateBuildpackCommand.parse(["bp", "--enable", "--disable"]) }
        #expect(throws: (any Error).self) { try UpdateBuildpackCommand.parse(["bp"]) }
        _ = try PushCommand.parse(["a", "-p", ".", "-b", "x", "-b", "y", "-t", "30", "--no-start", "--no-route"])
    }

    @Test func routesSplitOnTheLongestDomain() throws {
        let domains = [domain("apps.localhost"), domain("localhost")]
        let a = try PushCommand.splitRoute("web.apps.localhost/api", domains: domains)
        #expect(a.host == "web" && a.domain.name == "apps.localhost" && a.path == "/api")
        let b = try PushCommand.splitRoute("apps.localhost", domains: domains)
        #expect(b.host == "" && b.domain.name == "apps.localhost")
        #expect(throws: (any Error).self) { try PushCommand.splitRoute("x.example.com", domains: domains) }
        #expect(PushCommand.hostName("My_App") == "my-app")
    }
}

@Suite struct CFIgnoreTests {
    @Test func defaultsLeaveOutVCSAndManifest() {
        let i = CFIgnore()
        #expect(i.ignores(".git", isDirectory: true))
        #expect(i.ignores("sub/.git", isDirectory: true))
        #expect(i.ignores("manifest.yml", isDirectory: false))
        #expect(!i.ignores("sub/manifest.yml", isDirectory: false))
        #expect(i.ignores(".cfignore", isDirectory: false))
        #expect(!i.ignores("app.py", isDirectory: false))
    }

    @Test func gitignorePatterns() {
        let i = CFIgnore("""
            # comment
            *.log
            /build
            tmp/
            docs/**/*.md
            **/cache
            !keep.log
            """)
        #expect(i.ignores("a.log", isDirectory: false))
        #expect(i.ignores("deep/down/a.log", isDirectory: false))
        #expect(!i.ignores("keep.log", isDirectory: false))
        #expect(i.ignores("build", isDirectory: true))
        #expect(!i.ignores("src/build", isDirectory: true))
        #expect(i.ignores("tmp", isDirectory: true))
        #expect(i.ignores("a/tmp", isDirectory: true))
        #expect(!i.ignores("tmp", isDirectory: false))
        #expect(i.ignores("docs/x.md", isDirectory: false))
        #expect(i.ignores("docs/a/b/x.md", isDirectory: false))
        #expect(!i.ignores("other/x.md", isDirectory: false))
        #expect(i.ignores("cache", isDirectory: true))
        #expect(i.ignores("x/y/cache", isDirectory: true))
        #expect(!i.ignores("app.py", isDirectory: false))
    }
}

@Suite struct AppBitsTests {
    @Test func zipLeavesOutIgnoredAndMatchedFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/static/img", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/.git", withIntermediateDirectories: true)
        try "ref".write(toFile: dir + "/.git/HEAD", atomically: true, encoding: .utf8)
        try "print('hi')".write(toFile: dir + "/app.py", atomically: true, encoding: .utf8)
        try "applications: []".write(toFile: dir + "/manifest.yml", atomically: true, encoding: .utf8)
        try "*.secret\n".write(toFile: dir + "/.cfignore", atomically: true, encoding: .utf8)
        try "pw".write(toFile: dir + "/db.secret", atomically: true, encoding: .utf8)
        let big = Data((0..<(100 * 1024)).map { UInt8($0 % 251) })
        try big.write(to: URL(fileURLWithPath: dir + "/static/img/big.bin"))
        chmod(dir + "/app.py", 0o755)

        let bits = try AppBits(root: dir)
        let paths = bits.entries.map(\.path)
        #expect(paths == ["app.py", "static", "static/img", "static/img/big.bin"])
        let candidates = bits.matchCandidates
        #expect(candidates.count == 1)
        #expect(candidates[0].path == "static/img/big.bin" && candidates[0].sizeInBytes == 100 * 1024 && candidates[0].mode == "644")
        #expect(try candidates[0].checksum.value == sha1sum(dir + "/static/img/big.bin"))
        #expect(bits.entries[0].mode == 0o755)

        let all = try #require(try bits.zip(bits.zipPaths(excluding: [])))
        #expect(try zipNames(all) == ["app.py", "static/", "static/img/", "static/img/big.bin"])
        let rest = try #require(try bits.zip(bits.zipPaths(excluding: candidates)))
        #expect(try zipNames(rest) == ["app.py", "static/", "static/img/"])
        #expect(rest.count < all.count)
    }
}

@Suite struct SummaryTests {
    @Test func rendersLikeCF() throws {
        let app = try JSONDecoder().decode(AppResource.self, from: Data("""
            {"guid":"g","created_at":"t","updated_at":"t","name":"hello","state":"STARTED",
             "lifecycle":{"type":"buildpack","data":{"buildpacks":[],"stack":"cflinux"}},
             "relationships":{},"metadata":{"labels":{},"annotations":{}},"links":{}}
            """.utf8))
        let process = try JSONDecoder().decode(ProcessResource.self, from: Data("""
            {"guid":"p","created_at":"t","updated_at":"t","type":"web","command":null,"instances":2,"memory_in_mb":256,
             "disk_in_mb":1024,"log_rate_limit_in_bytes_per_second":-1,"health_check":{"type":"port","data":{"timeout":null,
             "invocation_timeout":null,"endpoint":null}},"relationships":{},"metadata":{"labels":{},"annotations":{}},"version":"v","links":{}}
            """.utf8))
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let stats = [
            ProcessInstanceStats(type: "web", index: 0, state: "RUNNING", usage: .init(cpu: 0.012, mem: 20 << 20, disk: 3 << 20),
                                 host: "10.0.0.1", uptime: 60, memQuota: 256 << 20, diskQuota: 1 << 30, details: nil),
            ProcessInstanceStats(type: "web", index: 1, state: "CRASHED", usage: .init(cpu: 0, mem: 0, disk: 0),
                                 host: "", uptime: 0, memQuota: 256 << 20, diskQuota: 1 << 30, details: "exited with 1"),
        ]
        let text = AppSummary.render(app: app, process: process, stats: stats, routes: [], droplet: nil, now: now)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "name:              hello")
        #expect(lines[1] == "requested state:   started")
        #expect(lines[4] == "stack:             cflinux")
        #expect(text.contains("instances:         1/2"))
        #expect(text.contains("memory usage:      256M"))
        let row0 = try #require(lines.first { $0.hasPrefix("#0") })
        #expect(row0.contains("running") && row0.contains("2027-01-15T07:59:00Z") && row0.contains("1.2%") && row0.contains("20M of 256M")
                && row0.contains("3M of 1G"))
        let row1 = try #require(lines.first { $0.hasPrefix("#1") })
        #expect(row1.contains("crashed") && row1.hasSuffix("exited with 1"))
    }

    @Test func sizes() {
        #expect(AppSummary.size(0) == "0")
        #expect(AppSummary.size(512 * 1024) == "512K")
        #expect(AppSummary.size(1_572_864) == "1.5M")
        #expect(AppSummary.size(1 << 30) == "1G")
    }

    @Test func logLinesFormatted() {
        let line = LogLine(appGUID: "g", timestamp: 1_800_000_000_000_000_000, sourceType: "APP/PROC/WEB", sourceInstance: "0",
                           messageType: .out, message: "hello")
        let plain = LogsCommand.format(line, colour: false)
        #expect(plain.hasSuffix("[APP/PROC/WEB/0] OUT hello"))
        #expect(!plain.contains("\u{1B}"))
        #expect(LogsCommand.format(line, colour: true).contains("\u{1B}[32m"))
    }
}

func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfl-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func domain(_ name: String) -> DomainResource {
    // swiftlint:disable:next force_try
    try! JSONDecoder().decode(DomainResource.self, from: Data("""
        {"guid":"\(name)","created_at":"t","updated_at":"t","name":"\(name)","internal":false,"router_group":null,
         "supported_protocols":["http"],"relationships":{"organization":{"data":null}},"metadata":{"labels":{},"annotations":{}},"links":{}}
        """.utf8))
}

func run(_ arguments: [String], input: Data? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

func sha1sum(_ path: String) throws -> String {
    String(try run(["sha1sum", path]).prefix(40))
}

func zipNames(_ zip: Data) throws -> [String] {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("z-\(UUID().uuidString).zip").path
    defer { try? FileManager.default.removeItem(atPath: file) }
    try zip.write(to: URL(fileURLWithPath: file))
    return try run(["python3", "-c", "import sys,zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))", file])
        .split(separator: "\n").map(String.init)
}
