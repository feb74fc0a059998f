import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PlatformModels

extension Services {
    static let blobChunkSize = 256 * 1024

    /// A blob as a streamed answer for a component, with `X-Content-SHA256`.
    ///
    /// Chunks are read on the thread pool, so memory stays constant whatever the blob's size.
    /// The content is hashed again on the way out and a blob that no longer matches its name
    /// aborts the transfer (the body is chunked, so the client sees a failed download, not a
    /// short one). A missing file is `notFound` (and logged: a record points at it).
    func blobResponse(_ sha: String, contentType: String, notFound: APIError, metadata: Logger.Metadata) async throws -> Response {
        guard Blobstore.isDigest(sha) else { throw notFound }
        let path = blobstore.path(sha)
        let threadPool = self.threadPool
        let handle = try await threadPool.runIfActive { FileHandle(forReadingAtPath: path).map(FileHandleBox.init) }
        guard let handle else {
            logger.error("blob missing", metadata: metadata.merging(["blob.sha256": .string(sha)]) { $1 })
            throw notFound
        }
        let logger = self.logger
        let body = ResponseBody { writer in
            defer { try? handle.handle.close() }
            var hasher = SHA256()
            while true {
                let data = try await threadPool.runIfActive { try handle.handle.read(upToCount: Self.blobChunkSize) ?? Data() }
                if data.isEmpty { break }
                hasher.update(data: data)
                try await writer.write(ByteBuffer(bytes: data))
            }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            guard digest == sha else {
                logger.error("blob corrupt", metadata: metadata.merging(["blob.sha256": .string(sha)]) { $1 })
                throw Blobstore.Failure(kind: .corrupt, description: "blob \(sha) is corrupt (content hashes to \(digest))")
            }
            try await writer.finish(nil)
        }
        // The header name is a constant token, valid by construction.
        return Response(status: .ok, headers: [.contentType: contentType, HTTPField.Name(AgentProtocol.sha256Header)!: sha],
                        body: body)
    }
}

/// Moves an open file between the request task and thread-pool threads; used by one at a time.
final class FileHandleBox: @unchecked Sendable {
    let handle: FileHandle
    init(_ handle: FileHandle) { self.handle = handle }
}
