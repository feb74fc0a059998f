import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PlatformModels

/// `GET /internal/v1/droplets/:guid/download`: a STAGED droplet's bits for the agents.
///
/// Streamed from the blobstore in chunks read on the thread pool, so memory stays constant
/// whatever the droplet's size; `X-Content-SHA256` carries the digest the agent checks. The
/// content is hashed again on the way out and a blob that no longer matches its name aborts
/// the transfer (the body is chunked, so the agent sees a failed download, not a short one).
struct DropletDownloadController {
    let services: Services
    static let chunkSize = 256 * 1024

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("v1/droplets/:guid/download", use: download)
    }

    @Sendable func download(_ request: Request, context: ControllerContext) async throws -> Response {
        let guid = try services.guidParameter(context, resource: "Droplet")
        let sha = try await services.db.read { conn in
            try conn.query("SELECT blob_sha256 FROM droplets WHERE guid = $1 AND state = 'STAGED'", [guid]).first?
                .decode("blob_sha256", as: String?.self)
        }
        let blobstore = services.blobstore
        guard let sha, Blobstore.isDigest(sha) else { throw APIError.notFound("Droplet") }
        let path = blobstore.path(sha)
        let threadPool = services.threadPool
        let handle = try await threadPool.runIfActive { FileHandle(forReadingAtPath: path).map(HandleBox.init) }
        guard let handle else {
            services.logger.error("droplet blob missing", metadata: ["droplet.guid": .string(guid), "blob.sha256": .string(sha)])
            throw APIError.notFound("Droplet")
        }
        let logger = services.logger
        let body = ResponseBody { writer in
            defer { try? handle.handle.close() }
            var hasher = SHA256()
            while true {
                let data = try await threadPool.runIfActive { try handle.handle.read(upToCount: Self.chunkSize) ?? Data() }
                if data.isEmpty { break }
                hasher.update(data: data)
                try await writer.write(ByteBuffer(bytes: data))
            }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            guard digest == sha else {
                logger.error("droplet blob corrupt", metadata: ["droplet.guid": .string(guid), "blob.sha256": .string(sha)])
                throw Blobstore.Failure(kind: .corrupt, description: "blob \(sha) is corrupt (content hashes to \(digest))")
            }
            try await writer.finish(nil)
        }
        // The header name is a constant token, valid by construction.
        return Response(status: .ok, headers: [.contentType: "application/gzip", HTTPField.Name(AgentProtocol.sha256Header)!: sha],
                        body: body)
    }

    /// Moves an open file between the request task and thread-pool threads; used by one at a time.
    final class HandleBox: @unchecked Sendable {
        let handle: FileHandle
        init(_ handle: FileHandle) { self.handle = handle }
    }
}
