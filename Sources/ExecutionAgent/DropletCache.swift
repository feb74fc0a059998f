import Archives
import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import PlatformClient
import PlatformModels

/// Droplets extracted once per droplet per agent, shared read-only by all their instances.
///
/// Layout under `<state>/droplets/`: `<sha256>/home/vcap/...` is a finished layer (the overlay's
/// lower directory), `tmp/` holds downloads and half-extracted layers (cleared on start). A
/// download is hashed as it streams and refused unless it matches the assignment's SHA-256; the
/// archive is extracted by the safe extractor (SECURITY.md A14: no entry leaves the layer, no
/// links out, bounded size) with every file owned by `vcap`.
public actor DropletCache {
    public enum Failure: Error, CustomStringConvertible, Sendable {
        case checksumMismatch(expected: String, actual: String)
        case badDigest(String)

        public var description: String {
            switch self {
            case .checksumMismatch(let expected, let actual):
                return "droplet download has SHA-256 \(actual), expected \(expected)"
            case .badDigest(let digest):
                return "droplet digest '\(digest)' is not 64 hex digits"
            }
        }
    }

    private let root: String
    private let client: ComponentClient?
    private let extractor: SafeExtractor
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private var inFlight: [String: Task<String, any Error>] = [:]

    /// - Parameters:
    ///   - client: where droplets are downloaded from (nil: only ``install(archive:sha256:)`` works).
    public init(root: String, client: ComponentClient?, threadPool: NIOThreadPool, logger: Logger) throws {
        self.root = root
        self.client = client
        self.threadPool = threadPool
        self.logger = logger
        self.extractor = SafeExtractor(
            limits: .init(maxTotalBytes: 8 << 30, maxEntries: 500_000, maxCompressionRatio: 1000),
            options: .init(owner: .init(uid: 2000, gid: 2000), allowSymlinks: true), logger: logger)
        let fm = FileManager.default
        try? fm.removeItem(atPath: root + "/tmp")
        try fm.createDirectory(atPath: root + "/tmp", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// The layer directory of a droplet (whether or not it exists yet).
    public func layerPath(sha256: String) -> String { root + "/" + sha256 }

    /// The droplet's layer, downloading and extracting it first if this agent does not have it.
    /// Concurrent calls for the same droplet share one download.
    public func layer(for droplet: DropletRef) async throws -> String {
        let digest = droplet.sha256.lowercased()
        guard digest.utf8.count == 64, digest.allSatisfy(\.isHexDigit) else { throw Failure.badDigest(droplet.sha256) }
        let path = layerPath(sha256: digest)
        if FileManager.default.fileExists(atPath: path + "/home/vcap") { return path }
        if let running = inFlight[digest] { return try await running.value }
        let task = Task { try await self.fetch(droplet, digest: digest) }
        inFlight[digest] = task
        defer { inFlight[digest] = nil }
        return try await task.value
    }

    /// Installs a droplet archive already on disk (tests, benchmarks); checks its digest.
    public func install(archive: String, sha256 digest: String) async throws -> String {
        let actual = try await threadPool.runIfActive { try Self.sha256(ofFile: archive) }
        guard actual == digest.lowercased() else { throw Failure.checksumMismatch(expected: digest, actual: actual) }
        return try await extract(archive: archive, digest: actual)
    }

    /// Removes layers no longer wanted. `keep` holds digests still in use or assigned.
    public func prune(keep: Set<String>) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where name != "tmp" && !keep.contains(name) {
            guard inFlight[name] == nil else { continue }
            logger.info("removing unused droplet layer", metadata: ["sha256": "\(name)"])
            try? fm.removeItem(atPath: root + "/" + name)
        }
    }

    private func fetch(_ droplet: DropletRef, digest: String) async throws -> String {
        guard let client else { throw ComponentClient.Failure.unreachable("no controller configured for droplet downloads") }
        let download = root + "/tmp/\(UUID().uuidString).tgz"
        defer { try? FileManager.default.removeItem(atPath: download) }
        guard FileManager.default.createFile(atPath: download, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: download) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: download])
        }
        var hasher = SHA256()
        let started = ContinuousClock.now
        do {
            _ = try await client.download(droplet.downloadPath) { chunk in
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                try handle.write(contentsOf: chunk.readableBytesView)
            }
            try handle.close()
        } catch {
            try? handle.close()
            throw error
        }
        let actual = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        guard actual == digest else { throw Failure.checksumMismatch(expected: digest, actual: actual) }
        logger.info("droplet downloaded", metadata: ["droplet": "\(droplet.guid)", "sha256": "\(digest)",
                                                     "elapsed": "\(ContinuousClock.now - started)"])
        return try await extract(archive: download, digest: digest)
    }

    private func extract(archive: String, digest: String) async throws -> String {
        let final = layerPath(sha256: digest)
        if FileManager.default.fileExists(atPath: final + "/home/vcap") { return final }
        let staging = root + "/tmp/\(digest)-\(UUID().uuidString.prefix(8))"
        let extractor = self.extractor
        do {
            try await threadPool.runIfActive {
                let fm = FileManager.default
                try fm.createDirectory(atPath: staging + "/home", withIntermediateDirectories: true,
                                       attributes: [.posixPermissions: 0o755])
                _ = try extractor.extract(archiveAt: archive, into: staging + "/home/vcap")
                chmod(staging + "/home/vcap", 0o755)
                chown(staging + "/home/vcap", 2000, 2000)
                for dir in ["app", "tmp", "logs"] {
                    let path = staging + "/home/vcap/" + dir
                    if !fm.fileExists(atPath: path) {
                        try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                        chown(path, 2000, 2000)
                    }
                }
                try fm.moveItem(atPath: staging, toPath: final)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        return final
    }

    static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
