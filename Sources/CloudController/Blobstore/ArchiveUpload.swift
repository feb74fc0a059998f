import Archives
import Foundation
import Hummingbird
import Logging
import NIOCore
import PostgresStore

extension Services {
    /// The whole upload of an archive into an app's package or droplet row: refuses an
    /// over-cap Content-Length before reading, claims the row (only from AWAITING_UPLOAD or
    /// FAILED, so one upload at a time), streams and validates the bits, then marks the row
    /// `storedState` (running `afterStored` in the same transaction) or FAILED with the reason.
    ///
    /// `table` and `storedState` are constants of the callers, never request data. `authorize`
    /// loads the row the actor may write and returns its current state.
    func acceptUpload(
        _ request: Request, table: String, noun: String, guid: String, storedState: String, formatHint: String,
        authorize: @escaping @Sendable (PostgresConnection) throws -> String,
        afterStored: @escaping @Sendable (PostgresConnection, _ appGuid: String) throws -> Void = { _, _ in }
    ) async throws {
        let limit = config.maxPackageBytes
        // Refuse before reading anything when the declared size is already over the cap (B1).
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit + 64 * 1024 {
            throw APIError.bodyTooLarge(limit: limit)
        }
        guard let boundary = PackagesController.boundary(request.headers[.contentType]) else {
            throw APIError.unprocessable("The upload must be multipart/form-data with a 'bits' field\(formatHint)")
        }
        try await db.write { conn in
            let state = try authorize(conn)
            guard state == "AWAITING_UPLOAD" || state == "FAILED" else {
                throw APIError.unprocessable("\(noun) is in state \(state); only a \(noun.lowercased()) awaiting upload accepts bits")
            }
            try conn.query("UPDATE \(table) SET state = 'PROCESSING_UPLOAD', error = NULL, updated_at = now() WHERE guid = $1", [guid])
        }
        do {
            let (sha, size) = try await receiveArchive(request, boundary: boundary, limit: limit)
            try await db.write { conn in
                let app = try conn.query(
                    "UPDATE \(table) SET state = $4, blob_sha256 = $2, size_bytes = $3, updated_at = now() WHERE guid = $1 RETURNING app_guid",
                    [guid, sha, size, storedState]).rows[0].decode("app_guid", as: String.self)
                try afterStored(conn, app)
            }
        } catch {
            let message = (error as? APIError)?.detail ?? "the upload failed"
            _ = try? await db.write { conn in
                try conn.query("UPDATE \(table) SET state = 'FAILED', error = $2, updated_at = now() WHERE guid = $1", [guid, message])
            }
            throw error
        }
    }

    /// Streams the multipart body: `bits` into a blob writer (flushed to disk off the cooperative
    /// pool), `resources` into memory up to 1 MiB; then validates every entry of the archive and
    /// commits the blob. Nothing is left behind when anything fails.
    func receiveArchive(_ request: Request, boundary: String, limit: Int) async throws -> (String, Int) {
        let services = self
        let writer = try await services.threadPool.runIfActive { try services.blobstore.writer(limit: limit) }
        let collector = MultipartCollector(boundary: boundary)
        do {
            for try await chunk in request.body {
                try collector.feed(chunk)
                if collector.pendingBits.count >= 1 << 20 || collector.done {
                    let bytes = collector.takeBits()
                    try await services.threadPool.runIfActive { try writer.write(bytes) }
                }
            }
            let rest = collector.takeBits()
            try await services.threadPool.runIfActive { try writer.write(rest) }
        } catch let failure as Blobstore.Failure where failure.kind == .tooLarge {
            writer.discard()
            throw APIError.bodyTooLarge(limit: limit)
        } catch let error as APIError {
            writer.discard()
            throw error
        } catch {
            writer.discard()
            throw APIError.unprocessable("The upload was interrupted or is not valid multipart/form-data")
        }
        guard collector.sawBits else {
            writer.discard()
            throw APIError.unprocessable("The upload has no 'bits' field")
        }
        if let resources = collector.resources, !resources.isEmpty {
            let trimmed = resources.trimmingCharacters(in: .whitespacesAndNewlines)
            guard trimmed == "[]" else {
                writer.discard()
                throw APIError.unprocessable("This platform holds no files for resource matching yet: upload every file in 'bits' and send 'resources' as []")
            }
        }
        let written = try await services.threadPool.runIfActive { try writer.finish() }
        let config = services.config
        do {
            try await services.threadPool.runIfActive { try Services.validate(archive: written.tempPath, config: config, logger: services.logger) }
        } catch {
            try? FileManager.default.removeItem(atPath: written.tempPath)
            throw error
        }
        let sha = try await services.threadPool.runIfActive { try services.blobstore.commit(written) }
        return (sha, written.size)
    }

    /// The library's message, naming the entry when the message does not already.
    static func describe(_ error: ArchiveError) -> String {
        guard let entry = error.entry, !error.message.contains(entry) else { return error.message }
        return "\(error.message) (entry: '\(entry)')"
    }

    /// Every entry checked by the safe extractor's validation pass; nothing is written.
    static func validate(archive: String, config: ControllerConfig, logger: Logger) throws {
        let extractor = SafeExtractor(
            limits: .init(maxTotalBytes: Int64(config.maxPackageUncompressedBytes), maxEntries: config.maxPackageEntries,
                          maxCompressionRatio: Double(config.maxPackageCompressionRatio)),
            options: .init(owner: nil, allowSymlinks: true), logger: logger)
        do {
            try extractor.validate(archiveAt: archive)
        } catch let error as ArchiveError {
            throw APIError(status: .unprocessableContent, code: 170002, title: "CF-AppBitsUploadInvalid",
                           detail: "The app upload is invalid: \(Self.describe(error))")
        }
    }
}
