import Archives
import Foundation
import Logging

/// What an upload stored: the blob and, for packages, the scratch tree its files were checked in.
struct ReceivedArchive: Sendable {
    let sha256: String
    let size: Int
    /// Set for packages; the caller records its files in the resource pool and removes it.
    let scratch: PackageScratch?
}

/// A package's files on disk while it is stored: `<blobstore>/tmp/<uuid>.scratch/root`. The
/// janitor's sweep of stale temp files removes one a crash left behind.
struct PackageScratch: Sendable {
    let directory: String
    /// Paths that came from the resource pool (already pooled: not recorded again).
    var placed: Set<String> = []

    var root: String { directory + "/root" }
}

extension Services {
    /// The reader for resource lists, with the package extractor's path rules.
    func resourceReader(field: String, allowV2: Bool, requirePath: Bool, maxCount: Int) -> ResourceListReader {
        let extractor = Services.packageExtractor(config: config, logger: logger)
        return ResourceListReader(field: field, allowV2: allowV2, requirePath: requirePath, maxCount: maxCount,
                                  normalize: { try extractor.normalizedPath($0) })
    }

    /// Builds a package from the uploaded archive (if any) and the pooled files named in
    /// `resources`; every step runs on the thread pool.
    ///
    /// 1. Every resource must be held by the pool (sizes within its bounds), else 422 naming the
    ///    first one missing, before any work.
    /// 2. The archive is extracted into a scratch tree by the safe extractor (its validation
    ///    pass is the same as for any upload; refusals are 422 naming the entry).
    /// 3. With no resources, the uploaded archive is stored as is (zip or tar.gz, as sent).
    ///    Otherwise the merged totals are checked against the package caps (uncompressed bytes,
    ///    entries), each pooled file is placed at its path (`PackageTree.place`: paths checked like
    ///    entry names, never through a symlink of the archive, never over an archive entry; mode
    ///    0644 or 0755), and the tree is packed as a tar.gz by `TarGzWriter` and stored; the
    ///    tar.gz must be within `max_package_bytes` and the entry cap too.
    ///
    /// On any failure the scratch tree and temp files are removed and nothing is stored.
    func assemblePackage(archive: BlobWriter.Result?, resources: [PoolResource]) async throws -> ReceivedArchive {
        let services = self
        let config = self.config
        let pool = ResourcePool(config: config)
        let blobstore = self.blobstore
        let logger = self.logger

        var blobs: [PoolResource.Key: String] = [:]
        if !resources.isEmpty {
            let wanted = resources.map(\.key).filter { pool.accepts(size: $0.size) }
            do {
                blobs = try await db.write { conn in try ResourcePool.held(conn, wanted) }
            } catch {
                if let archive { try? FileManager.default.removeItem(atPath: archive.tempPath) }
                throw error
            }
            if let missing = resources.first(where: { blobs[$0.key] == nil }) {
                if let archive { try? FileManager.default.removeItem(atPath: archive.tempPath) }
                throw Self.notPooled(missing)
            }
        }

        var scratch = PackageScratch(directory: "")
        do {
            scratch = PackageScratch(directory: try await threadPool.runIfActive { try blobstore.temporaryPath(suffix: ".scratch") })
            let root = scratch.root
            let directory = scratch.directory
            let counts: ArchiveCounts = try await threadPool.runIfActive {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                        attributes: [.posixPermissions: 0o700])
                guard let archive else {
                    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false,
                                                            attributes: [.posixPermissions: 0o755])
                    return ArchiveCounts()
                }
                return try Services.extract(archive: archive.tempPath, into: root, config: config, logger: logger)
            }

            if resources.isEmpty, let archive {
                let sha = try await threadPool.runIfActive { try blobstore.commit(archive) }
                return ReceivedArchive(sha256: sha, size: archive.size, scratch: scratch)
            }
            if let archive { try? FileManager.default.removeItem(atPath: archive.tempPath) }

            let added = resources.reduce(Int64(0)) { $0 + $1.key.size }
            let uncompressed = counts.totalBytes + added
            guard uncompressed <= Int64(config.maxPackageUncompressedBytes) else {
                throw APIError.appBitsInvalid(
                    "with the matched resources the package holds \(uncompressed) bytes uncompressed, over the limit of \(config.maxPackageUncompressedBytes)")
            }
            let entries = counts.files + counts.directories + counts.symlinks + resources.count
            guard entries <= config.maxPackageEntries else {
                throw APIError.appBitsInvalid("with the matched resources the package has \(entries) entries, over the limit of \(config.maxPackageEntries)")
            }

            let heldBlobs = blobs
            do {
                try await threadPool.runIfActive { try PackageTree.place(resources, blobs: heldBlobs, root: root, blobstore: blobstore) }
            } catch let unavailable as PackageTree.Unavailable {
                logger.warning("pooled file unavailable; entry dropped", metadata: [
                    "resource.sha1": "\(unavailable.resource.key.sha1)", "resource.size": "\(unavailable.resource.key.size)",
                ])
                _ = try? await db.write { conn in try ResourcePool.forget(conn, [unavailable.resource.key]) }
                throw Self.notPooled(unavailable.resource)
            }
            scratch.placed = Set(resources.map(\.path))

            let stored: BlobWriter.Result = try await threadPool.runIfActive {
                let output = try blobstore.temporaryPath(suffix: ".tgz")
                let packed = try TarGzWriter(logger: logger).write(directory: root, to: output)
                let packedEntries = packed.files + packed.directories + packed.symlinks
                let size = ((try? FileManager.default.attributesOfItem(atPath: output)[.size]) as? NSNumber)?.intValue ?? Int.max
                guard packedEntries <= config.maxPackageEntries, size <= config.maxPackageBytes else {
                    try? FileManager.default.removeItem(atPath: output)
                    throw packedEntries > config.maxPackageEntries
                        ? APIError.appBitsInvalid("with the matched resources the package has \(packedEntries) entries, over the limit of \(config.maxPackageEntries)")
                        : APIError.appBitsInvalid("with the matched resources the package is \(size) bytes, over the limit of \(config.maxPackageBytes)")
                }
                return try blobstore.commit(fileAt: output)
            }
            return ReceivedArchive(sha256: stored.sha256, size: stored.size, scratch: scratch)
        } catch {
            if let archive { try? FileManager.default.removeItem(atPath: archive.tempPath) }
            await services.removeScratch(scratch)
            throw error
        }
    }

    /// The 422 for a resource the pool does not hold.
    static func notPooled(_ resource: PoolResource) -> APIError {
        APIError.appBitsInvalid(
            "resource '\(resource.path)' (SHA-1 \(resource.key.sha1), \(resource.key.size) bytes) is not in the resource pool; upload it in 'bits'")
    }

    /// Extracts an uploaded archive with the package caps; refusals are 422 naming the entry,
    /// failures of the host's file system stay server errors.
    static func extract(archive: String, into root: String, config: ControllerConfig, logger: Logger) throws -> ArchiveCounts {
        do {
            return try packageExtractor(config: config, logger: logger).extract(archiveAt: archive, into: root)
        } catch let error as ArchiveError where error.kind != .io {
            throw APIError.appBitsInvalid(describe(error))
        }
    }

    /// Records the stored package's files in the resource pool: every regular file within the
    /// pool's size bounds, except those that came from it, is copied into the blobstore (unless
    /// an identical blob is there) and its entry recorded or renewed. Best effort: a failure is
    /// logged and leaves the package as stored.
    func recordInPool(_ scratch: PackageScratch) async {
        let pool = ResourcePool(config: config)
        guard pool.isEnabled else { return }
        let blobstore = self.blobstore
        do {
            let candidates = try await threadPool.runIfActive {
                try PackageTree.poolCandidates(root: scratch.root, pool: pool, skip: scratch.placed)
            }
            var entries: [PoolResource.Key: String] = [:]
            for candidate in candidates where entries[candidate.key] == nil {
                let stored = try await threadPool.runIfActive { try PackageTree.store(candidate, root: scratch.root, blobstore: blobstore) }
                if stored { entries[candidate.key] = candidate.sha256 }
            }
            if !entries.isEmpty {
                let recorded = entries
                try await db.write { conn in try ResourcePool.record(conn, recorded) }
            }
        } catch {
            logger.warning("resource pool not updated", metadata: ["error": "\(error)"])
        }
    }

    /// Removes a scratch tree (never following its symlinks); a failure is only logged.
    func removeScratch(_ scratch: PackageScratch?) async {
        guard let scratch, !scratch.directory.isEmpty else { return }
        let logger = self.logger
        _ = try? await threadPool.runIfActive {
            do {
                try SafeExtractor.removeTree(at: scratch.directory)
            } catch {
                logger.error("could not remove a package scratch directory", metadata: ["path": "\(scratch.directory)", "error": "\(error)"])
            }
        }
    }
}
