import Foundation
import PlatformModels
import Testing

@testable import Stager

/// Buildpack scripts the tests stage with.
enum Buildpacks {
    /// Heroku API: detects `hello.txt`, compiles (counting stagings in its cache, copying an env
    /// var), releases `web: ./run.sh`.
    static let hello: [String: String] = [
        "bin/detect": "#!/bin/bash\n[ -f \"$1/hello.txt\" ] && echo 'hello 1.2.3' || exit 1\n",
        "bin/compile": """
            #!/bin/bash
            set -e
            echo "-----> compiling the hello app"
            echo compiled > "$1/compiled.txt"
            id -u > "$1/uid.txt"
            n=0; [ -f "$2/count" ] && n=$(cat "$2/count")
            echo $((n + 1)) > "$2/count"
            cp "$2/count" "$1/count.txt"
            if [ -f "$3/GREETING" ]; then cp "$3/GREETING" "$1/greeting.txt"; fi
            printf '%s' "${GREETING:-}" > "$1/greeting-env.txt"
            """,
        "bin/release": "#!/bin/bash\nprintf -- '---\\ndefault_process_types:\\n  web: ./run.sh\\n'\n",
    ]

    /// Never detects.
    static let never: [String: String] = [
        "bin/detect": "#!/bin/bash\nexit 1\n",
        "bin/compile": "#!/bin/bash\nexit 0\n",
        "bin/release": "#!/bin/bash\necho '--- {}'\n",
    ]

    static func with(_ overrides: [String: String]) -> [String: String] {
        hello.merging(overrides) { _, new in new }
    }
}

/// Real staging in runc containers: buildpacks from local git repositories, the droplet and
/// cache as the packer makes them.
@Suite(.serialized)
struct StagingIntegrationTests {
    @Test func herokuBuildpackIsDetectedAndTheDropletHasTheContractLayout() async throws {
        try await StagerLab.with("layout", slot: 0) { lab in
            let never = try lab.repository("never", Buildpacks.never)
            let hello = try lab.repository("hello", Buildpacks.hello)
            let package = try lab.package(["hello.txt": "hi", "run.sh": "#!/bin/bash\necho run\n", "public/releases/1/index.html": "x"],
                                          links: ["public/current": "releases/1"])
            let job = lab.job([StagerLab.buildpack(never, name: "never"), StagerLab.buildpack(hello, name: "hello")],
                              env: ["GREETING": "hello there"])
            let (outcome, droplet) = await lab.stage(job, package: package)
            let success = try #require(outcome.result.success, "staging failed: \(String(describing: outcome.result.failure)) log: \(lab.logs.text)")
            #expect(success.processTypes == ["web": "./run.sh"])
            #expect(success.startCommand == "./run.sh")
            #expect(success.buildpacks.count == 1)
            #expect(success.buildpacks.first?.name == "hello")
            #expect(success.buildpacks.first?.buildpackName == "hello")
            #expect(success.buildpacks.first?.version == "1.2.3")
            #expect(success.buildpacks.first?.commit?.count == 40)
            let dir = try #require(droplet)
            let fm = FileManager.default
            for entry in ["app", "deps", "tmp", "logs", "profile.d", "staging_info.yml"] {
                #expect(fm.fileExists(atPath: dir + "/" + entry), "droplet lacks \(entry)")
            }
            #expect(try String(contentsOfFile: dir + "/app/compiled.txt", encoding: .utf8) == "compiled\n")
            #expect(try String(contentsOfFile: dir + "/app/uid.txt", encoding: .utf8) == "2000\n", "buildpacks run as vcap")
            #expect(try String(contentsOfFile: dir + "/app/greeting.txt", encoding: .utf8) == "hello there", "ENV_DIR holds app variables")
            #expect(try String(contentsOfFile: dir + "/app/greeting-env.txt", encoding: .utf8) == "hello there")
            #expect(try fm.destinationOfSymbolicLink(atPath: dir + "/app/public/current") == "releases/1", "links inside the app survive (A5)")
            let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/staging_info.yml"))) as? [String: String]
            #expect(info == ["detected_buildpack": "hello", "start_command": "./run.sh"])
            #expect(lab.logs.text.contains("-----> compiling the hello app"), "buildpack output reaches the staging log")
            #expect(lab.logs.all.allSatisfy { $0.sourceType == "STG" })
            let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            #expect(!mounts.contains(lab.base + "/state/builds/"), "the build's overlay is unmounted")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: lab.base + "/state/builds")) ?? []).isEmpty)
        }
    }

    @Test func theCacheOfOneStagingIsRestoredForTheNext() async throws {
        try await StagerLab.with("cache", slot: 1) { lab in
            let hello = try lab.repository("hello", Buildpacks.hello)
            let package = try lab.package(["hello.txt": "hi"])
            let (first, firstDroplet) = await lab.stage(lab.job([StagerLab.buildpack(hello, name: "hello")]), package: package)
            #expect(try String(contentsOfFile: try #require(firstDroplet) + "/app/count.txt", encoding: .utf8) == "1\n")
            let cache = try #require(first.cache, "the buildpack wrote to its cache, so the stager must hand one back")
            let (_, secondDroplet) = await lab.stage(lab.job([StagerLab.buildpack(hello, name: "hello")]), package: package, cache: cache)
            #expect(try String(contentsOfFile: try #require(secondDroplet) + "/app/count.txt", encoding: .utf8) == "2\n")
        }
    }

    @Test func noDetectingBuildpackIsNoAppDetectedError() async throws {
        try await StagerLab.with("nodetect", slot: 2) { lab in
            let hello = try lab.repository("hello", Buildpacks.hello)
            let never = try lab.repository("never", Buildpacks.never)
            let package = try lab.package(["other.txt": "no hello here"])
            let (outcome, droplet) = await lab.stage(lab.job([StagerLab.buildpack(never), StagerLab.buildpack(hello)]), package: package)
            #expect(outcome.result.failure?.code == .noAppDetected)
            #expect(droplet == nil)
        }
    }

    @Test func compileAndReleaseFailuresCarryTheBuildpacksWords() async throws {
        try await StagerLab.with("failures", slot: 3) { lab in
            let broken = try lab.repository("broken", Buildpacks.with([
                "bin/compile": "#!/bin/bash\necho 'ERROR: no matching distribution found for flask==99' >&2\nexit 3\n",
            ]))
            let package = try lab.package(["hello.txt": "hi"])
            let (compile, _) = await lab.stage(lab.job([StagerLab.buildpack(broken, name: "broken")]), package: package)
            let failure = try #require(compile.result.failure)
            #expect(failure.code == .buildpackCompileFailed)
            #expect(failure.message.contains("bin/compile"), "names the step: \(failure.message)")
            #expect(failure.message.contains("no matching distribution found for flask==99"), "carries the output: \(failure.message)")

            let badYAML = try lab.repository("bad-yaml", Buildpacks.with(["bin/release": "#!/bin/bash\necho 'default_process_types: [unclosed'\n"]))
            let (release, _) = await lab.stage(lab.job([StagerLab.buildpack(badYAML)]), package: package)
            #expect(release.result.failure?.code == .buildpackReleaseFailed)
            #expect(release.result.failure?.message.contains("invalid YAML") == true, "\(String(describing: release.result.failure))")

            let failingRelease = try lab.repository("failing-release", Buildpacks.with(["bin/release": "#!/bin/bash\nexit 4\n"]))
            let (failed, _) = await lab.stage(lab.job([StagerLab.buildpack(failingRelease)]), package: package)
            #expect(failed.result.failure?.code == .buildpackReleaseFailed)
        }
    }

    @Test func namedBuildpacksSupplyInOrderAndTheLastFinalizes() async throws {
        try await StagerLab.with("multi", slot: 4) { lab in
            let supplier = try lab.repository("supplier", [
                "bin/supply": """
                    #!/bin/bash
                    set -e
                    mkdir -p "$3/$4/bin" "$3/$4/profile.d"
                    printf '#!/bin/bash\\necho tool ran\\n' > "$3/$4/bin/tool"
                    chmod +x "$3/$4/bin/tool"
                    echo 'export FROM_SUPPLIER=yes' > "$3/$4/profile.d/supplier.sh"
                    echo "-----> supplied index $4"
                    """,
                "bin/release": "#!/bin/bash\necho '--- {}'\n",
            ])
            let finalizer = try lab.repository("finalizer", [
                "bin/supply": "#!/bin/bash\nexit 0\n",
                "bin/finalize": "#!/bin/bash\nset -e\ntool > \"$1/tool-output.txt\"\n",
                "bin/release": "#!/bin/bash\nprintf 'default_process_types:\\n  web: ./serve\\n  worker: ./work\\n'\n",
            ])
            let package = try lab.package(["Procfile": "# comment\nworker: ./better-worker\n", "serve": "x"])
            let job = lab.job([StagerLab.buildpack(supplier, name: "supplier"), StagerLab.buildpack(finalizer, name: "finalizer")], detect: false)
            let (outcome, droplet) = await lab.stage(job, package: package)
            let success = try #require(outcome.result.success, "\(String(describing: outcome.result.failure)) \(lab.logs.text)")
            #expect(success.processTypes == ["web": "./serve", "worker": "./better-worker"], "Procfile entries win")
            #expect(success.buildpacks.map(\.name) == ["supplier", "finalizer"])
            let dir = try #require(droplet)
            #expect(try String(contentsOfFile: dir + "/app/tool-output.txt", encoding: .utf8) == "tool ran\n", "a supplier's bin is on PATH for the next")
            #expect(FileManager.default.isExecutableFile(atPath: dir + "/deps/0/bin/tool"))
            let profile = try String(contentsOfFile: dir + "/profile.d/000_multi-supply.sh", encoding: .utf8)
            #expect(profile.contains("/home/vcap/deps/0/bin"))
            #expect(FileManager.default.fileExists(atPath: dir + "/profile.d/0_supplier.sh"))
        }
    }

    @Test func aStartCommandMustComeFromSomewhere() async throws {
        try await StagerLab.with("nostart", slot: 5) { lab in
            let silent = try lab.repository("silent", Buildpacks.with(["bin/release": "#!/bin/bash\necho '---'\n"]))
            let package = try lab.package(["hello.txt": "hi"])
            let (none, _) = await lab.stage(lab.job([StagerLab.buildpack(silent)]), package: package)
            #expect(none.result.failure?.code == .stagingError)
            #expect(none.result.failure?.message.contains("No start command") == true)
            let (given, _) = await lab.stage(lab.job([StagerLab.buildpack(silent)], command: "./my-server"), package: package)
            #expect(given.result.success != nil, "a command given with -c is enough: \(String(describing: given.result.failure))")
        }
    }

    @Test func aBuildpackThatHangsIsStoppedAtTheTimeout() async throws {
        try await StagerLab.with("timeout", slot: 6) { lab in
            let hanging = try lab.repository("hanging", Buildpacks.with(["bin/detect": "#!/bin/bash\necho detecting\nsleep 600\n"]))
            let package = try lab.package(["hello.txt": "hi"])
            let started = ContinuousClock.now
            let (outcome, _) = await lab.stage(lab.job([StagerLab.buildpack(hanging)], timeout: 3), package: package)
            #expect(outcome.result.failure?.code == .stagingTimeout)
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    @Test func linksLeftByABuildpackStayLinksAndTheHostIsOutOfReach() async throws {
        try await StagerLab.with("isolation", slot: 7) { lab in
            let listener = try TCPListener()
            defer { listener.close() }
            let prying = try lab.repository("prying", Buildpacks.with([
                "bin/compile": """
                    #!/bin/bash
                    ln -s / "$1/root-link"
                    ln -s /etc/shadow "$1/shadow-link"
                    grep CapEff /proc/self/status | awk '{print $2}' > "$1/capeff.txt"
                    gw=$(awk '$2 == "00000000" { print $3 }' /proc/net/route)
                    ip=$(printf '%d.%d.%d.%d' 0x${gw:6:2} 0x${gw:4:2} 0x${gw:2:2} 0x${gw:0:2})
                    if timeout 3 bash -c "echo > /dev/tcp/$ip/\(listener.port)" 2>/dev/null; then echo reachable; else echo unreachable; fi > "$1/host-port.txt"
                    echo "$ip" > "$1/gateway.txt"
                    exit 0
                    """,
            ]))
            let package = try lab.package(["hello.txt": "hi"])
            let (outcome, droplet) = await lab.stage(lab.job([StagerLab.buildpack(prying)]), package: package)
            #expect(outcome.result.success != nil, "\(String(describing: outcome.result.failure)) \(lab.logs.text)")
            let dir = try #require(droplet)
            let fm = FileManager.default
            #expect(try fm.destinationOfSymbolicLink(atPath: dir + "/app/root-link") == "/", "packed as a link, never followed (A14)")
            #expect(try fm.destinationOfSymbolicLink(atPath: dir + "/app/shadow-link") == "/etc/shadow")
            #expect(try String(contentsOfFile: dir + "/app/capeff.txt", encoding: .utf8) == "0000000000000000\n")
            let gateway = try String(contentsOfFile: dir + "/app/gateway.txt", encoding: .utf8)
            #expect(gateway.hasPrefix("10.241.7."), "the build has its own network: \(gateway)")
            #expect(try String(contentsOfFile: dir + "/app/host-port.txt", encoding: .utf8) == "unreachable\n",
                    "a build must not reach the host's ports")
            #expect(listener.accepted == 0)
        }
    }
}

/// SECURITY C10: a buildpack that fills the disk, forks without end or floods its output is
/// stopped or contained, and the build fails (or finishes) with a clear message.
@Suite(.serialized)
struct StagingLimitTests {
    @Test func aBuildpackFillingTheDiskIsStopped() async throws {
        try await StagerLab.with("disk", slot: 8) { lab in
            let filling = try lab.repository("filling", Buildpacks.with([
                "bin/compile": "#!/bin/bash\nfor i in $(seq 1 40); do head -c 10M /dev/zero > \"$1/blob-$i\"; sleep 0.2; done\n",
            ]))
            let package = try lab.package(["hello.txt": "hi"])
            let (outcome, _) = await lab.stage(lab.job([StagerLab.buildpack(filling)], diskMB: 64), package: package)
            let failure = try #require(outcome.result.failure)
            #expect(failure.code == .stagingError)
            #expect(failure.message.contains("disk limit (64 MB)"), "\(failure.message)")
        }
    }

    @Test func forksAreBoundedByThePidsLimit() async throws {
        try await StagerLab.with("pids", slot: 9) { lab in
            let forking = try lab.repository("forking", Buildpacks.with([
                "bin/compile": "#!/bin/bash\nfor i in $(seq 1 1000); do sleep 30 & done 2>/dev/null\nwait\n",
            ]))
            let package = try lab.package(["hello.txt": "hi"])
            let started = ContinuousClock.now
            let (outcome, _) = await lab.stage(lab.job([StagerLab.buildpack(forking)], timeout: 8), package: package)
            // The pids limit (256 in the lab) stops the loop long before 1000 processes; the
            // survivors sleep on until the staging timeout ends them all.
            #expect(outcome.result.failure != nil)
            #expect(ContinuousClock.now - started < .seconds(30))
            let output = lab.logs.text
            #expect(output.contains("fork") || output.contains("Resource temporarily unavailable") || outcome.result.failure?.code == .stagingTimeout,
                    "\(String(describing: outcome.result.failure))")
        }
    }

    @Test func aFloodOfOutputIsRateLimitedAndTheBuildStillFinishes() async throws {
        try await StagerLab.with("flood", slot: 10) { lab in
            let noisy = try lab.repository("noisy", Buildpacks.with([
                "bin/compile": "#!/bin/bash\nseq 1 300000\necho compiled > \"$1/compiled.txt\"\n",
            ]))
            let package = try lab.package(["hello.txt": "hi"])
            let (outcome, droplet) = await lab.stage(lab.job([StagerLab.buildpack(noisy)]), package: package)
            #expect(outcome.result.success != nil, "\(String(describing: outcome.result.failure))")
            #expect(droplet.map { FileManager.default.fileExists(atPath: $0 + "/app/compiled.txt") } == true)
            let lines = lab.logs.all
            #expect(lines.count < 100_000, "lines past the rate are dropped, not shipped: \(lines.count)")
            #expect(lines.contains { $0.message.contains("dropped") }, "the log says lines were dropped")
        }
    }
}

/// A TCP listener on every host address that counts connections (the build must not reach it).
final class TCPListener: @unchecked Sendable {
    let fd: Int32
    let port: Int
    private var thread: Thread?
    private let lock = NSLock()
    private var count = 0
    var accepted: Int { lock.lock(); defer { lock.unlock() }; return count }

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = INADDR_ANY
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw TestFailure("cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                lock.lock(); count += 1; lock.unlock()
                Glibc.close(client)
            }
        }
        thread.start()
        self.thread = thread
    }

    func close() {
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}
