import GitFetch
import Testing

@Suite("GitSource parsing, redaction and URL policy")
struct GitSourceTests {
    @Test func parsesFragments() throws {
        #expect(try GitSource(parsing: "https://example.com/org/bp.git").ref == .defaultBranch)
        #expect(try GitSource(parsing: "https://example.com/org/bp.git#").ref == .defaultBranch)
        #expect(try GitSource(parsing: "https://example.com/org/bp.git#v1.8.6").ref == .named("v1.8.6"))
        let id = String(repeating: "AB", count: 20)
        #expect(try GitSource(parsing: "https://example.com/bp#\(id)").ref == .commit(id.lowercased()))
        #expect(try GitSource(parsing: "https://example.com/bp#a#b").ref == .named("a#b"))
        #expect(try GitSource(parsing: "https://example.com/bp#;rm -rf /").ref == .named(";rm -rf /"))
    }

    @Test func parsesURLForms() throws {
        let https = try GitURL(parsing: "HTTPS://Example.COM:8443/org/bp.git")
        #expect(https.scheme == .https && https.host == "example.com" && https.port == 8443 && https.path == "/org/bp.git")
        let scp = try GitURL(parsing: "git@github.com:org/bp.git")
        #expect(scp.scheme == .ssh && scp.isSCPLike && scp.host == "github.com" && scp.path == "org/bp.git")
        #expect(scp.description == "git@github.com:org/bp.git")
        #expect(try GitURL(parsing: "ssh://git@[::1]:2222/x.git").host == "[::1]")
        #expect(try GitURL(parsing: "file:///srv/bp.git").scheme == .file)
        #expect(try GitURL(parsing: "/srv/bp.git").scheme == .localPath)
        for bad in ["", "relative/path", "ftp://example.com/x", "https://exa mple.com/x", "https://example.com",
                    "https://example.com:99999/x", "file://otherhost/x", "https://exa\u{7}mple.com/x"] {
            #expect(throws: GitError.self, "\(bad)") { try GitURL(parsing: bad) }
        }
    }

    @Test func redactsCredentialsEverywhere() throws {
        let source = try GitSource(parsing: "https://user:t0ken@example.com/org/bp.git#main")
        #expect(source.url.hasCredentials)
        #expect(source.url.redacted == "https://***@example.com/org/bp.git")
        #expect(source.description == "https://***@example.com/org/bp.git#main")
        var dumped = ""
        dump(source, to: &dumped)
        var dumpedURL = ""
        dump(source.url, to: &dumpedURL)
        for text in ["\(source)", String(reflecting: source), "\(source.url)", String(reflecting: source.url),
                     dumped, dumpedURL, "\([source])", "\(Optional(source) as Any)"] {
            #expect(!text.contains("t0ken"), "\(text)")
            #expect(!text.contains("user"), "\(text)")
        }
        // A lone token as user name is secret too.
        #expect(try GitURL(parsing: "https://ghp_abc123@example.com/x").redacted == "https://***@example.com/x")
        // Parse errors never echo the input.
        let error = try #require(throws: GitError.self) { try GitURL(parsing: "https//user:t0ken@example.com/x") }
        #expect(!error.description.contains("t0ken"))
    }

    @Test func policyAllowsHTTPSAndListedHostsOnly() throws {
        let policy = GitURLPolicy.default
        #expect(throws: Never.self) { try policy.check(try GitSource(parsing: "https://example.com/x.git")) }
        for text in ["http://example.com/x.git", "git://example.com/x.git", "ssh://example.com/x.git", "example.com:x.git"] {
            let error = try #require(throws: GitError.self) { try policy.check(try GitSource(parsing: text)) }
            #expect(error.kind == .notAllowed)
        }
        let mirror = GitURLPolicy(insecureHostAllowList: ["mirror.internal", "127.0.0.1:8080"])
        #expect(throws: Never.self) { try mirror.check(try GitSource(parsing: "http://mirror.internal/x.git")) }
        #expect(throws: Never.self) { try mirror.check(try GitSource(parsing: "http://127.0.0.1:8080/x.git")) }
        #expect(throws: GitError.self) { try mirror.check(try GitSource(parsing: "http://127.0.0.1:9090/x.git")) }
        let onlyGitHub = GitURLPolicy(hostAllowList: ["github.com"])
        #expect(throws: GitError.self) { try onlyGitHub.check(try GitSource(parsing: "https://169.254.169.254/x.git")) }
        #expect(throws: Never.self) { try onlyGitHub.check(try GitSource(parsing: "https://github.com/x.git")) }
        // Local sources depend on trust, not on the policy.
        #expect(throws: GitError.self) { try policy.check(try GitSource(parsing: "file:///etc")) }
        #expect(throws: Never.self) { try policy.check(try GitSource(parsing: "file:///srv/bp.git", trusted: true)) }
    }
}
