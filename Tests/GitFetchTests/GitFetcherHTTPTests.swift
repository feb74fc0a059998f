import Foundation
import GitFetch
import Testing

@Suite("GitFetcher over HTTP against a fake server")
struct GitFetcherHTTPTests {
    @Test func credentialsAreSentButNeverShownAndRejectionDoesNotLoop() throws {
        let server = try FakeHTTPServer(response: "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        defer { server.stop() }
        let fixture = try GitFixture()
        let policy = GitURLPolicy(insecureHostAllowList: ["127.0.0.1"])
        let source = try GitSource(parsing: "http://user:s3cret@127.0.0.1:\(server.port)/org/bp.git#main")
        let error = try #require(throws: GitError.self) {
            try makeFetcher(policy: policy).fetch(source, into: fixture.cache)
        }
        #expect(error.kind == .authentication)
        for text in [error.description, error.localizedDescription, String(reflecting: error)] {
            #expect(!text.contains("s3cret"), "\(text)")
        }
        #expect(error.description.contains("http://***@127.0.0.1:\(server.port)/org/bp.git"))
        let requests = server.requests
        // The URL libgit2 requests never carries the userinfo; the password goes in the header.
        #expect(requests.allSatisfy { !$0.components(separatedBy: "\r\n")[0].contains("s3cret") })
        let basic = Data("user:s3cret".utf8).base64EncodedString()
        #expect(requests.contains { $0.contains("Authorization: Basic \(basic)") })
        #expect(requests.count <= 3, "credentials must be offered once, got \(requests.count) requests")
    }

    @Test func anonymousSourceAskedForAuthenticationFailsClearly() throws {
        let server = try FakeHTTPServer(response: "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        defer { server.stop() }
        let fixture = try GitFixture()
        let policy = GitURLPolicy(insecureHostAllowList: ["127.0.0.1:\(server.port)"])
        let error = try #require(throws: GitError.self) {
            try makeFetcher(policy: policy).fetch(try GitSource(parsing: "http://127.0.0.1:\(server.port)/x.git"), into: fixture.cache)
        }
        #expect(error.kind == .authentication)
        #expect(error.message.contains("requires authentication"))
    }

    @Test func redirectsAreNotFollowedByDefault() throws {
        let server = try FakeHTTPServer(response: "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/info/refs?service=git-upload-pack\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        defer { server.stop() }
        let fixture = try GitFixture()
        let policy = GitURLPolicy(insecureHostAllowList: ["127.0.0.1"])
        let error = try #require(throws: GitError.self) {
            try makeFetcher(policy: policy).fetch(try GitSource(parsing: "http://127.0.0.1:\(server.port)/x.git"), into: fixture.cache,
                                                  limits: FetchLimits(timeout: .seconds(20)))
        }
        #expect(error.kind == .library)
        #expect(error.message.contains("redirect"))
        #expect(server.requests.count == 1)
    }
}
