import Foundation

/// A scratch directory with helpers to build repositories with the `git` CLI (argument
/// vectors only, never a shell), removed when the fixture is released.
final class GitFixture {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("gitfetch-\(UUID().uuidString.lowercased())").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Where fetched checkouts go.
    var cache: String { root + "/cache" }

    /// Runs `git -c user.name=t -c user.email=t@t <arguments>` in `directory`; returns stdout.
    @discardableResult
    func git(_ arguments: [String], in directory: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main",
                             "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        // Keep the developer's ~/.gitconfig and /etc/gitconfig out of the fixtures.
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = root
        environment["GIT_CONFIG_NOSYSTEM"] = "1"
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError(message: "git \(arguments.joined(separator: " ")) failed: \(String(decoding: errorData, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Creates a working repository `name` with an initial commit of `files`.
    func makeWorkRepository(_ name: String, files: [String: String]) throws -> String {
        let path = root + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try git(["init", "-q"], in: path)
        try commit(files, message: "initial", in: path)
        return path
    }

    /// Writes `files` (relative path → content), commits them and returns the commit id.
    @discardableResult
    func commit(_ files: [String: String], message: String, in repository: String) throws -> String {
        for (relative, content) in files {
            let url = URL(fileURLWithPath: repository + "/" + relative)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        try git(["add", "-A"], in: repository)
        try git(["commit", "-q", "--allow-empty", "-m", message], in: repository)
        return try git(["rev-parse", "HEAD"], in: repository)
    }

    /// Makes a bare clone of `work` (all branches and tags, HEAD kept) and returns its path.
    func bareClone(of work: String, name: String) throws -> String {
        let path = root + "/" + name + ".git"
        try git(["clone", "-q", "--bare", work, path], in: root)
        return path
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
