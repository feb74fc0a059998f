import Crypto
import Foundation

/// Content-addressed blob storage in a directory: blobs are named by their SHA-256, written
/// atomically (temp file + fsync + rename) and verified against their name on every read.
///
/// Layout: `<root>/sha256/<2 hex>/<64 hex>`; in-flight writes live in `<root>/tmp/`. All
/// methods block on file I/O: callers run them on a thread pool.
struct Blobstore: Sendable {
    let root: String

    struct Failure: Error, CustomStringConvertible, Sendable {
        enum Kind: Sendable { case tooLarge, corrupt, missing, io }
        let kind: Kind
        let description: String
    }

    init(root: String) {
        self.root = root
    }

    private func ensureDirectories() throws {
        for dir in [root + "/sha256", root + "/tmp"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
    }

    func path(_ sha256: String) -> String {
        "\(root)/sha256/\(sha256.prefix(2))/\(sha256)"
    }

    func exists(_ sha256: String) -> Bool {
        Self.isDigest(sha256) && FileManager.default.fileExists(atPath: path(sha256))
    }

    static func isDigest(_ s: String) -> Bool {
        s.count == 64 && s.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// Starts a streamed write with a size cap.
    func writer(limit: Int) throws -> BlobWriter {
        try ensureDirectories()
        return try BlobWriter(directory: root + "/tmp", limit: limit)
    }

    /// Moves a finished temp file into place under its digest. An existing identical blob wins
    /// and has its modification time renewed, so garbage collection's grace period covers it
    /// again while the caller records its reference.
    func commit(_ written: BlobWriter.Result) throws -> String {
        let target = path(written.sha256)
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if FileManager.default.fileExists(atPath: target) {
            try? FileManager.default.removeItem(atPath: written.tempPath)
            _ = utimes(target, nil)
        } else if rename(written.tempPath, target) != 0 {
            throw Failure(kind: .io, description: "cannot store blob: \(String(cString: strerror(errno)))")
        }
        return written.sha256
    }

    /// Renews an existing blob's modification time, as `commit` does for a duplicate, before a
    /// new reference to it is recorded; false when the blob is absent.
    func retain(_ sha256: String) -> Bool {
        Self.isDigest(sha256) && utimes(path(sha256), nil) == 0
    }

    /// A fresh path in the temp area for a file the caller writes itself and then stores with
    /// `commit(fileAt:)` (or removes).
    func temporaryPath(suffix: String = "") throws -> String {
        try ensureDirectories()
        return "\(root)/tmp/\(UUID().uuidString.lowercased())\(suffix)"
    }

    /// Hashes a finished file in the temp area and moves it into place like `commit(_:)`.
    /// The file is removed when this throws.
    func commit(fileAt tempPath: String) throws -> BlobWriter.Result {
        do {
            guard let handle = FileHandle(forReadingAtPath: tempPath) else {
                throw Failure(kind: .io, description: "cannot open \(tempPath)")
            }
            defer { try? handle.close() }
            var hasher = SHA256()
            var size = 0
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
                hasher.update(data: data)
                size += data.count
            }
            try handle.synchronize()
            let result = BlobWriter.Result(tempPath: tempPath, sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(), size: size)
            _ = try commit(result)
            return result
        } catch {
            try? FileManager.default.removeItem(atPath: tempPath)
            throw error
        }
    }

    /// Reads a blob in chunks, verifying its digest; `body` sees every chunk before the check at
    /// the end, so streaming consumers must treat a thrown `.corrupt` as "abort what you sent".
    func read(_ sha256: String, chunkSize: Int = 256 * 1024, _ body: ([UInt8]) throws -> Void) throws {
        guard Self.isDigest(sha256), let handle = FileHandle(forReadingAtPath: path(sha256)) else {
            throw Failure(kind: .missing, description: "blob \(sha256) is missing")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let data = try handle.read(upToCount: chunkSize), !data.isEmpty {
            hasher.update(data: data)
            try body([UInt8](data))
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        guard digest == sha256 else {
            throw Failure(kind: .corrupt, description: "blob \(sha256) is corrupt (content hashes to \(digest))")
        }
    }

    /// Verifies a blob without using its content.
    func verify(_ sha256: String) throws {
        try read(sha256) { _ in }
    }

    /// Deletes blobs that no record references and that are older than `grace` (so blobs of
    /// uploads still being recorded survive); also stale temp files. Returns what was removed.
    @discardableResult
    func collectGarbage(referenced: Set<String>, grace: TimeInterval = 3600, now: Date = Date()) -> [String] {
        var removed: [String] = []
        let fm = FileManager.default
        let base = root + "/sha256"
        for prefix in (try? fm.contentsOfDirectory(atPath: base)) ?? [] {
            for name in (try? fm.contentsOfDirectory(atPath: "\(base)/\(prefix)")) ?? [] where !referenced.contains(name) {
                let file = "\(base)/\(prefix)/\(name)"
                let modified = (try? fm.attributesOfItem(atPath: file)[.modificationDate] as? Date) ?? now
                if now.timeIntervalSince(modified) >= grace, (try? fm.removeItem(atPath: file)) != nil {
                    removed.append(name)
                }
            }
        }
        for name in (try? fm.contentsOfDirectory(atPath: root + "/tmp")) ?? [] {
            let file = root + "/tmp/" + name
            let modified = (try? fm.attributesOfItem(atPath: file)[.modificationDate] as? Date) ?? now
            if now.timeIntervalSince(modified) >= grace { try? fm.removeItem(atPath: file) }
        }
        return removed
    }
}

/// One streamed write into the blobstore's temp area, hashing as it goes and refusing to grow
/// past its limit; removes its temp file unless finished and committed.
final class BlobWriter: @unchecked Sendable {
    struct Result: Sendable {
        let tempPath: String
        let sha256: String
        let size: Int
    }

    let tempPath: String
    private let handle: FileHandle
    private var hasher = SHA256()
    private(set) var size = 0
    let limit: Int
    private var finished = false

    init(directory: String, limit: Int) throws {
        tempPath = "\(directory)/\(UUID().uuidString.lowercased())"
        guard FileManager.default.createFile(atPath: tempPath, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: tempPath)
        else { throw Blobstore.Failure(kind: .io, description: "cannot create a temporary file in \(directory)") }
        self.handle = handle
        self.limit = limit
    }

    func write(_ bytes: some Collection<UInt8>) throws {
        size += bytes.count
        guard size <= limit else {
            throw Blobstore.Failure(kind: .tooLarge, description: "the upload is larger than the limit of \(limit) bytes")
        }
        let data = Data(bytes)
        hasher.update(data: data)
        try handle.write(contentsOf: data)
    }

    /// Flushes to disk and returns the digest; the caller commits or discards.
    func finish() throws -> Result {
        try handle.synchronize()
        try handle.close()
        finished = true
        return Result(tempPath: tempPath, sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(), size: size)
    }

    /// Removes the temp file (after a failure or a refusal).
    func discard() {
        if !finished { try? handle.close() }
        finished = true
        try? FileManager.default.removeItem(atPath: tempPath)
    }

    deinit {
        if !finished {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: tempPath)
        }
    }
}
