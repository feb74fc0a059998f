import Archives
import Crypto
import Foundation
import Logging
import PlatformModels

/// The files of an app directory as `push` sends them: walked with `.cfignore`, each regular
/// file with its SHA-1, size and mode; the ones the resource pool holds are left out of the zip.
public struct AppBits: Sendable {
    /// One entry under the app root.
    public struct Entry: Sendable, Equatable {
        public var path: String
        public var isDirectory: Bool
        public var isRegularFile: Bool
        public var size: Int64
        public var mode: Int
        public var sha1: String?
    }

    /// Files smaller than this are never matched (the platform does not pool them), as in CF.
    public static let matchMinimumBytes: Int64 = 64 * 1024

    public let root: String
    public let entries: [Entry]

    /// Walks `root` (honouring its `.cfignore`) and hashes every regular file.
    public init(root: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError.usage("the app path \(root) is not a directory")
        }
        self.root = root
        let ignoreText = (try? String(contentsOfFile: root + "/.cfignore", encoding: .utf8)) ?? ""
        let ignore = CFIgnore(ignoreText)
        var entries: [Entry] = []
        try Self.walk(root: root, relative: "", ignore: ignore, into: &entries)
        self.entries = entries
    }

    static func walk(root: String, relative: String, ignore: CFIgnore, into entries: inout [Entry]) throws {
        let dir = relative.isEmpty ? root : root + "/" + relative
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        for name in names {
            let path = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(root + "/" + path, &st) == 0 else { continue }
            let type = st.st_mode & S_IFMT
            let isDirectory = type == S_IFDIR
            if ignore.ignores(path, isDirectory: isDirectory) { continue }
            guard isDirectory || type == S_IFREG || type == S_IFLNK else { continue }
            var entry = Entry(path: path, isDirectory: isDirectory, isRegularFile: type == S_IFREG, size: Int64(st.st_size),
                              mode: Int(st.st_mode & 0o777), sha1: nil)
            if entry.isRegularFile { entry.sha1 = try sha1(of: root + "/" + path) }
            entries.append(entry)
            if isDirectory { try walk(root: root, relative: path, ignore: ignore, into: &entries) }
        }
    }

    static func sha1(of path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CLIError.operation("cannot read \(path)") }
        defer { try? handle.close() }
        var hasher = Insecure.SHA1()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The files worth asking the resource pool about.
    public var matchCandidates: [BitsResource] {
        entries.filter { $0.isRegularFile && $0.size >= Self.matchMinimumBytes }.map(\.resource)
    }

    /// Total bytes of regular files.
    public var totalBytes: Int64 { entries.filter(\.isRegularFile).reduce(0) { $0 + $1.size } }

    /// The paths to put in the zip: everything but the matched files.
    public func zipPaths(excluding matched: [BitsResource]) -> [String] {
        let skip = Set(matched.compactMap(\.path))
        return entries.filter { !skip.contains($0.path) }.map(\.path)
    }

    /// Writes the zip of `paths` to a temporary file and reads it back; nil when there is nothing to send.
    public func zip(_ paths: [String]) throws -> Data? {
        guard !paths.isEmpty else { return nil }
        let output = NSTemporaryDirectory() + "cf-like-push-\(getpid())-\(UUID().uuidString).zip"
        defer { unlink(output) }
        try ZipWriter(logger: Logger(label: "cf-like.push")).write(paths: paths, relativeTo: root, to: output)
        guard let data = FileManager.default.contents(atPath: output) else { throw CLIError.operation("cannot read \(output)") }
        return data
    }
}

extension AppBits.Entry {
    /// The resource-match shape of a regular file (mode in octal, as CF sends it).
    public var resource: BitsResource {
        BitsResource(sha1: sha1 ?? "", sizeInBytes: size, path: path, mode: String(mode, radix: 8))
    }
}
