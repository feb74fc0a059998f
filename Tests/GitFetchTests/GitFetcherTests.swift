import Foundation
import GitFetch
import Testing

@Suite("GitFetcher against local bare repositories")
struct GitFetcherTests {
    @Test func defaultBranch() throws {
        let repo = try StandardRepository()
        let result = try makeFetcher().fetch(try repo.source(), into: repo.fixture.cache)
        #expect(result.commit == repo.main)
        #expect(!result.fromCache)
        #expect(StandardRepository.read(result.directory, "README") == "main v2\n")
        #expect(StandardRepository.read(result.directory, "FEATURE") == nil)
        #expect(result.directory.hasPrefix(URL(fileURLWithPath: repo.fixture.cache).standardizedFileURL.path + "/"))
    }

    @Test func namedBranch() throws {
        let repo = try StandardRepository()
        let result = try makeFetcher().fetch(try repo.source("feature"), into: repo.fixture.cache)
        #expect(result.commit == repo.feature)
        #expect(StandardRepository.read(result.directory, "FEATURE") == "yes\n")
    }

    @Test func lightweightTag() throws {
        let repo = try StandardRepository()
        let result = try makeFetcher().fetch(try repo.source("light"), into: repo.fixture.cache)
        #expect(result.commit == repo.first)
        #expect(StandardRepository.read(result.directory, "README") == "main v1\n")
    }

    @Test func annotatedTagIsPeeledToItsCommit() throws {
        let repo = try StandardRepository()
        let result = try makeFetcher().fetch(try repo.source("v2.0"), into: repo.fixture.cache)
        #expect(result.commit == repo.main)
        #expect(result.commit != repo.annotatedTagObject)
        #expect(StandardRepository.read(result.directory, "README") == "main v2\n")
    }

    @Test func fullCommitIdAtABranchTip() throws {
        let repo = try StandardRepository()
        let result = try makeFetcher().fetch(try repo.source(repo.feature.uppercased()), into: repo.fixture.cache)
        #expect(result.commit == repo.feature)
    }

    @Test func fullCommitIdNotAtAnyTip() throws {
        let repo = try StandardRepository()
        // Add a commit below the tip of main so no ref (or tag) points at it.
        let work = repo.fixture.root + "/work"
        let hidden = try repo.fixture.commit(["README": "v3\n"], message: "third", in: work)
        try repo.fixture.commit(["README": "v4\n"], message: "fourth", in: work)
        try repo.fixture.git(["push", "-q", repo.bare, "main"], in: work)
        let result = try makeFetcher().fetch(try repo.source(hidden), into: repo.fixture.cache)
        #expect(result.commit == hidden)
        #expect(StandardRepository.read(result.directory, "README") == "v3\n")
    }

    @Test func abbreviatedCommitIdResolves() throws {
        let repo = try StandardRepository()
        let result = try makeFetcher().fetch(try repo.source(String(repo.first.prefix(10))), into: repo.fixture.cache)
        #expect(result.commit == repo.first)
    }

    @Test func abbreviatedCommitIdThatDoesNotResolveIsNotFound() throws {
        let repo = try StandardRepository()
        // A prefix no object in this tiny repository has (the fixture's ids are random enough
        // that picking one that differs from all three in the first digit is enough).
        let ids = [repo.first, repo.main, repo.feature, repo.annotatedTagObject]
        let digit = "0123456789abcdef".first { d in !ids.contains { $0.hasPrefix(String(d)) } } ?? "0"
        let bogus = String(repeating: digit, count: 8)
        let error = try #require(throws: GitError.self) {
            try makeFetcher().fetch(try repo.source(bogus), into: repo.fixture.cache)
        }
        #expect(error.kind == .refNotFound)
        #expect(error.description.contains("failed to fetch ref '\(bogus)'"))
    }

    @Test func unknownRefIsAClearError() throws {
        let repo = try StandardRepository()
        let error = try #require(throws: GitError.self) {
            try makeFetcher().fetch(try repo.source("no-such-branch"), into: repo.fixture.cache)
        }
        #expect(error.kind == .refNotFound)
        #expect(error.message == "failed to fetch ref 'no-such-branch' from file://\(repo.bare): no such branch or tag")
    }

    @Test func shellMetacharactersInRefAreJustAMissingRef() throws {
        let repo = try StandardRepository()
        let sentinel = repo.fixture.root + "/pwned"
        for ref in [";rm -rf /", ";touch \(sentinel)", "$(touch \(sentinel))", "`touch \(sentinel)`", "main;touch \(sentinel)",
                    "--upload-pack=touch \(sentinel)", "-x", "../../etc/passwd", "a\nb"] {
            let error = try #require(throws: GitError.self) {
                try makeFetcher().fetch(try repo.source(ref), into: repo.fixture.cache)
            }
            #expect(error.kind == .refNotFound)
            #expect(error.message.hasPrefix("failed to fetch ref '"))
            #expect(!error.message.contains("\n"))
        }
        let error = try #require(throws: GitError.self) {
            try makeFetcher().fetch(try repo.source(";rm -rf /"), into: repo.fixture.cache)
        }
        #expect(error.message == "failed to fetch ref ';rm -rf /' from file://\(repo.bare): not a valid branch or tag name")
        #expect(!FileManager.default.fileExists(atPath: sentinel))
    }

    @Test func submodulesAreNeverFetched() throws {
        let fixture = try GitFixture()
        let other = try fixture.makeWorkRepository("other", files: ["SECRET": "other tenant\n"])
        let otherCommit = try fixture.git(["rev-parse", "HEAD"], in: other)
        let work = try fixture.makeWorkRepository("super", files: [
            ".gitmodules": """
            [submodule "etc"]
            \tpath = etc
            \turl = file:///etc
            [submodule "other"]
            \tpath = vendor/other
            \turl = file://\(other)
            """,
        ])
        // Gitlinks recorded directly: no `git submodule add`, which would clone them.
        try fixture.git(["update-index", "--add", "--cacheinfo", "160000,\(otherCommit),etc"], in: work)
        try fixture.git(["update-index", "--add", "--cacheinfo", "160000,\(otherCommit),vendor/other"], in: work)
        try fixture.git(["commit", "-q", "-m", "submodules"], in: work)
        let bare = try fixture.bareClone(of: work, name: "super")

        let result = try makeFetcher().fetch(try GitSource(parsing: "file://" + bare, trusted: true), into: fixture.cache)
        #expect(StandardRepository.read(result.directory, ".gitmodules")?.contains("file:///etc") == true)
        for path in ["etc", "vendor/other"] {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: result.directory + "/" + path)) ?? []
            #expect(contents.isEmpty, "submodule \(path) must stay empty, has \(contents)")
        }
        #expect(!FileManager.default.fileExists(atPath: result.directory + "/etc/passwd"))
        #expect(!FileManager.default.fileExists(atPath: result.directory + "/.git/modules"))
    }

    @Test func symlinksAreCheckedOutAsLinks() throws {
        let fixture = try GitFixture()
        let sentinelDirectory = fixture.root + "/outside"
        try FileManager.default.createDirectory(atPath: sentinelDirectory, withIntermediateDirectories: true)
        try "keep me\n".write(toFile: sentinelDirectory + "/file", atomically: true, encoding: .utf8)
        let work = try fixture.makeWorkRepository("links", files: ["real.txt": "real\n"])
        try FileManager.default.createDirectory(atPath: work + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: work + "/bin/compile", withDestinationPath: "/bin/sh")
        try FileManager.default.createSymbolicLink(atPath: work + "/lib", withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: work + "/outside", withDestinationPath: sentinelDirectory)
        try FileManager.default.createSymbolicLink(atPath: work + "/relative", withDestinationPath: "real.txt")
        try fixture.commit([:], message: "links", in: work)
        let bare = try fixture.bareClone(of: work, name: "links")

        let result = try makeFetcher().fetch(try GitSource(parsing: bare, trusted: true), into: fixture.cache)
        let expected = ["bin/compile": "/bin/sh", "lib": "/etc", "outside": sentinelDirectory, "relative": "real.txt"]
        for (path, target) in expected {
            let attributes = try FileManager.default.attributesOfItem(atPath: result.directory + "/" + path)
            #expect(attributes[.type] as? FileAttributeType == .typeSymbolicLink, "\(path) is not a symlink")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: result.directory + "/" + path) == target)
        }
        // Removing the checkout must not follow the links.
        try FileManager.default.removeItem(atPath: fixture.cache)
        #expect(StandardRepository.read(sentinelDirectory, "file") == "keep me\n")
    }

    @Test func localSourcesNeedTrust() throws {
        let repo = try StandardRepository()
        for text in ["file://" + repo.bare, repo.bare, "file:///etc"] {
            let error = try #require(throws: GitError.self) {
                try makeFetcher().fetch(try GitSource(parsing: text), into: repo.fixture.cache)
            }
            #expect(error.kind == .notAllowed)
        }
        let trusted = try makeFetcher().fetch(try GitSource(parsing: repo.bare, trusted: true), into: repo.fixture.cache)
        #expect(trusted.commit == repo.main)
        // Nothing was left behind by the refused attempts.
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: repo.fixture.cache + "/.tmp")) ?? []
        #expect(leftovers.isEmpty)
    }

    @Test func plainTextAndSSHRefusedByDefault() throws {
        let fixture = try GitFixture()
        for text in ["http://127.0.0.1:1/x.git", "git://127.0.0.1/x.git", "ssh://git@example.com/x.git", "git@example.com:org/x.git"] {
            let error = try #require(throws: GitError.self) {
                try makeFetcher().fetch(try GitSource(parsing: text), into: fixture.cache)
            }
            #expect(error.kind == .notAllowed, "\(text)")
        }
        // Listed hosts pass the policy (the fetch then fails on the closed port, not the policy).
        let policy = GitURLPolicy(insecureHostAllowList: ["127.0.0.1:1"])
        let error = try #require(throws: GitError.self) {
            try makeFetcher(policy: policy).fetch(try GitSource(parsing: "http://127.0.0.1:1/x.git"), into: fixture.cache)
        }
        #expect(error.kind == .library)
    }

    @Test func credentialsNeverAppearInErrors() throws {
        let fixture = try GitFixture()
        let source = try GitSource(parsing: "https://user:s3cret@127.0.0.1:1/x.git#main")
        let error = try #require(throws: GitError.self) {
            try makeFetcher().fetch(source, into: fixture.cache)
        }
        let texts = [error.description, error.localizedDescription, error.debugDescription, error.message,
                     "\(error)", String(reflecting: error), (error as any Error).localizedDescription]
        for text in texts {
            #expect(!text.contains("s3cret"), "\(text)")
            #expect(!text.contains("user:"), "\(text)")
        }
        #expect(error.description.contains("https://***@127.0.0.1:1/x.git"))
        // Also through the http policy path and a plain-text refusal.
        let refused = try #require(throws: GitError.self) {
            try makeFetcher().fetch(try GitSource(parsing: "http://user:s3cret@127.0.0.1:1/x.git"), into: fixture.cache)
        }
        #expect(!refused.localizedDescription.contains("s3cret"))
    }

    @Test func cacheServesAPinnedCommitWithoutTheRemote() throws {
        let repo = try StandardRepository()
        let fetcher = makeFetcher()
        let first = try fetcher.fetch(try repo.source(repo.first), into: repo.fixture.cache)
        #expect(!first.fromCache)
        try FileManager.default.removeItem(atPath: repo.bare)
        let second = try fetcher.fetch(try repo.source(repo.first), into: repo.fixture.cache)
        #expect(second.fromCache)
        #expect(second.directory == first.directory)
        #expect(StandardRepository.read(second.directory, "README") == "main v1\n")
    }

    @Test func branchFetchResolvesFirstThenUsesTheCache() throws {
        let repo = try StandardRepository()
        let fetcher = makeFetcher()
        let first = try fetcher.fetch(try repo.source("main"), into: repo.fixture.cache)
        let again = try fetcher.fetch(try repo.source("main"), into: repo.fixture.cache)
        #expect(again.fromCache && again.commit == first.commit)
        // The branch moves: the next fetch must see the new commit, not the cached one.
        let work = repo.fixture.root + "/work"
        let moved = try repo.fixture.commit(["README": "moved\n"], message: "moved", in: work)
        try repo.fixture.git(["push", "-q", repo.bare, "main"], in: work)
        let third = try fetcher.fetch(try repo.source("main"), into: repo.fixture.cache)
        #expect(third.commit == moved && !third.fromCache)
        // The same commit reached through a tag shares the cache entry.
        let tag = try fetcher.fetch(try repo.source("v2.0"), into: repo.fixture.cache)
        #expect(tag.fromCache && tag.commit == repo.main)
    }

    @Test func receivedBytesLimit() throws {
        let fixture = try GitFixture()
        let work = try fixture.makeWorkRepository("big", files: ["README": "big\n"])
        var generator = SystemRandomNumberGenerator()
        let blob = Data((0..<(5 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try blob.write(to: URL(fileURLWithPath: work + "/blob.bin"))
        try fixture.commit([:], message: "blob", in: work)
        let bare = try fixture.bareClone(of: work, name: "big")
        let source = try GitSource(parsing: "file://" + bare, trusted: true)

        let error = try #require(throws: GitError.self) {
            try makeFetcher().fetch(source, into: fixture.cache, limits: FetchLimits(maxReceivedBytes: 1 << 20))
        }
        #expect(error.kind == .limitExceeded)
        #expect(error.message.contains("received-bytes limit of 1048576 bytes"))

        let checkoutError = try #require(throws: GitError.self) {
            try makeFetcher().fetch(source, into: fixture.cache, limits: FetchLimits(maxCheckoutBytes: 1 << 20))
        }
        #expect(checkoutError.kind == .limitExceeded)
        #expect(checkoutError.message.contains("checkout-size limit"))
        // Failed fetches leave nothing in the cache.
        let entries = try FileManager.default.contentsOfDirectory(atPath: fixture.cache).filter { $0 != ".tmp" }
        #expect(entries.isEmpty)
    }

    @Test func timeLimit() throws {
        let repo = try StandardRepository()
        let error = try #require(throws: GitError.self) {
            try makeFetcher().fetch(try repo.source("main"), into: repo.fixture.cache, limits: FetchLimits(timeout: .zero))
        }
        #expect(error.kind == .limitExceeded)
        #expect(error.message.contains("time limit"))
    }
}
