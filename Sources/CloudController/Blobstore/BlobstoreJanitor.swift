import Foundation
import Logging
import NIOPosix
import PostgresStore
import ServiceLifecycle

/// Every `interval`, for as long as the controller runs: bounds the resource pool (idle and
/// least recently used entries go, `ResourcePool.prune`), then removes blobs that no record
/// references (packages, droplets, resource pool entries, apps' buildpack caches and the
/// uploads of builds still STAGING all count).
struct BlobstoreJanitor: Service {
    let pool: PostgresPool
    let blobstore: Blobstore
    let threadPool: NIOThreadPool
    let interval: Duration
    let grace: TimeInterval
    let resourcePool: ResourcePool
    let logger: Logger

    func run() async throws {
        // Graceful shutdown (SIGTERM) cancels the wait at once instead of letting it run out.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return  // cancelled: the service group is shutting down
                }
                do {
                    let dropped = try await Self.prune(pool: pool, resourcePool: resourcePool)
                    if dropped > 0 { logger.info("resource pool pruned", metadata: ["entries.removed": "\(dropped)"]) }
                } catch {
                    logger.warning("resource pool pruning skipped", metadata: ["error": "\(error)"])
                }
                do {
                    let removed = try await Self.collect(pool: pool, blobstore: blobstore, threadPool: threadPool, grace: grace)
                    if !removed.isEmpty { logger.info("blobstore garbage collected", metadata: ["blobs.removed": "\(removed.count)"]) }
                } catch {
                    logger.warning("blobstore garbage collection skipped", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Drops idle and least recently used resource pool entries; returns how many went.
    static func prune(pool: PostgresPool, resourcePool: ResourcePool) async throws -> Int {
        try await pool.transaction { conn in try resourcePool.prune(conn) }
    }

    /// Every digest a record points at; blobs outside this set (and older than `grace`) go.
    static func collect(pool: PostgresPool, blobstore: Blobstore, threadPool: NIOThreadPool, grace: TimeInterval) async throws -> [String] {
        let referenced = try await pool.query("""
            SELECT blob_sha256 FROM packages WHERE blob_sha256 IS NOT NULL
            UNION SELECT blob_sha256 FROM droplets WHERE blob_sha256 IS NOT NULL
            UNION SELECT blob_sha256 FROM resource_pool
            UNION SELECT buildpack_cache_sha256 FROM apps WHERE buildpack_cache_sha256 IS NOT NULL
            UNION SELECT d FROM builds, unnest(ARRAY[droplet_blob_sha256, cache_blob_sha256, input_cache_sha256]) AS d
              WHERE builds.state = 'STAGING' AND d IS NOT NULL
            """)
            .rows.map { try $0.decode("blob_sha256", as: String.self) }
        let keep = Set(referenced)
        return try await threadPool.runIfActive { blobstore.collectGarbage(referenced: keep, grace: grace) }
    }
}
