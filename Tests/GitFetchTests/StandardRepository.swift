import Foundation
import GitFetch
import Logging

/// A bare repository with two commits on `main`, a `feature` branch, a lightweight tag on
/// the first commit and an annotated tag on the second.
struct StandardRepository {
    let fixture: GitFixture
    let bare: String
    /// First commit on main (lightweight tag `light`, not a branch tip).
    let first: String
    /// Tip of main (annotated tag `v2.0`).
    let main: String
    /// Tip of `feature`.
    let feature: String
    /// The annotated tag object's own id (must never be returned as the commit).
    let annotatedTagObject: String

    init() throws {
        let fixture = try GitFixture()
        let work = try fixture.makeWorkRepository("work", files: ["README": "main v1\n"])
        first = try fixture.git(["rev-parse", "HEAD"], in: work)
        try fixture.git(["tag", "light"], in: work)
        main = try fixture.commit(["README": "main v2\n"], message: "second", in: work)
        try fixture.git(["tag", "-a", "v2.0", "-m", "release 2.0"], in: work)
        annotatedTagObject = try fixture.git(["rev-parse", "v2.0"], in: work)
        try fixture.git(["checkout", "-q", "-b", "feature"], in: work)
        feature = try fixture.commit(["FEATURE": "yes\n"], message: "feature", in: work)
        try fixture.git(["checkout", "-q", "main"], in: work)
        bare = try fixture.bareClone(of: work, name: "standard")
        self.fixture = fixture
    }

    /// A trusted `file://` source for this repository with an optional fragment.
    func source(_ fragment: String? = nil) throws -> GitSource {
        try GitSource(parsing: "file://" + bare + (fragment.map { "#" + $0 } ?? ""), trusted: true)
    }

    /// Reads a file of a checkout.
    static func read(_ directory: String, _ file: String) -> String? {
        try? String(contentsOfFile: directory + "/" + file, encoding: .utf8)
    }
}

/// A fetcher with the default policy and a test logger.
func makeFetcher(policy: GitURLPolicy = .default) -> GitFetcher {
    GitFetcher(policy: policy, logger: Logger(label: "GitFetchTests"))
}
