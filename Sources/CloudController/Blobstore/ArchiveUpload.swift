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
    /// With `usesResourcePool` (packages) the `resources` field is honoured and the stored
    /// package's files are recorded in the resource pool once it is stored (see `assemblePackage`).
    ///
    /// `table` and `storedState` are constants of the callers, never request data. `authorize`
    /// loads the row the actor may write and returns its current state.
    func acceptUpload(
        _ request: Request, table: String, noun: String, guid: String, storedState: String, formatHint: String,
        usesResourcePool: Bool = false,
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
        var scratch: PackageScratch?
        do {
            let received = try await receiveArchive(request, boundary: boundary, limit: limit, usesResourcePool: usesResourcePool)
            scratch = received.scratch
            try await db.write { conn in
                let app = try conn.query(
                    "UPDATE \(table) SET state = $4, blob_sha256 = $2, size_bytes = $3, updated_at = now() WHERE guid = $1 RETURNING app_guid",
                    [guid, received.sha256, received.size, storedState]).rows[0].decode("app_guid", as: String.self)
                try afterStored(conn, app)
            }
        } catch {
            await removeScratch(scratch)
            let message = (error as? APIError)?.detail ?? "the upload failed"
            _ = try? await db.write { conn in
                try conn.query("UPDATE \(table) SET state = 'FAILED', error = $2, updated_at = now() WHERE guid = $1", [guid, message])
            }
            throw error
        }
        if let scratch {
            await recordInPool(scratch)
            await removeScratch(scratch)
        }
    }

    /// Streams the multipart body: `bits` into a blob writer (flushed to disk off the cooperative
    /// pool), `resources` into memory up to 4 MiB; then validates every entry of the archive and
    /// commits the blob. Nothing is left behind when anything fails.
    ///
    /// Only a package upload (`usesResourcePool`) may list `resources`; it is then built by
    /// `assemblePackage`, which also returns the scratch tree for the resource pool.
    func receiveArchive(_ request: Request, boundary: String, limit: Int, usesResourcePool: Bool = false) async throws -> ReceivedArchive {
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
        var resources: [PoolResource] = []
        if let text = collector.resources, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            do {
                if usesResourcePool {
                    resources = try resourceReader(field: "resources", allowV2: true, requirePath: true,
                                                   maxCount: config.maxPackageEntries).read(text: text)
                } else if text.trimmingCharacters(in: .whitespacesAndNewlines) != "[]" {
                    throw APIError.unprocessable("Only package uploads take 'resources': upload every file in 'bits' and send 'resources' as []")
                }
            } catch {
                writer.discard()
                throw error
            }
        }
        // A client whose every file is pooled sends 'resources' alone (the cf CLI leaves 'bits' out or empty).
        let hasBits = collector.sawBits && writer.size > 0
        guard hasBits || !resources.isEmpty else {
            writer.discard()
            throw APIError.unprocessable("The upload has no 'bits' field")
        }
        let written: BlobWriter.Result?
        if hasBits {
            written = try await services.threadPool.runIfActive { try writer.finish() }
        } else {
            writer.discard()
            written = nil
        }
        if usesResourcePool, !resources.isEmpty || ResourcePool(config: config).isEnabled {
            return try await assemblePackage(archive: written, resources: resources)
        }
        guard let written else { throw APIError.unprocessable("The upload has no 'bits' field") }
        do {
            try await services.threadPool.runIfActive { try Services.validate(archive: written.tempPath, config: config, logger: services.logger) }
        } catch {
            try? FileManager.default.removeItem(atPath: written.tempPath)
            throw error
        }
        let sha = try await services.threadPool.runIfActive { try services.blobstore.commit(written) }
        return ReceivedArchive(sha256: sha, size: written.size, scratch: nil)
    }

    /// The library's message, naming the entry when the message does not already.
    static func describe(_ error: ArchiveError) -> String {
        guard let entry = error.entry, !error.message.contains(entry) else { return error.message }
        return "\(error.message) (entry: '\(entry)')"
    }

    /// The safe extractor with the package caps of the configuration.
    static func packageExtractor(config: ControllerConfig, logger: Logger) -> SafeExtractor {
        SafeExtractor(
            limits: .init(maxTotalBytes: Int64(config.maxPackageUncompressedBytes), maxEntries: config.maxPackageEntries,
                          maxCompressionRatio: Double(config.maxPackageCompressionRatio)),
            options: .init(owner: nil, allowSymlinks: true), logger: logger)
    }

    /// Every entry checked by the safe extractor's validation pass; nothing is written.
    static func validate(archive: String, config: ControllerConfig, logger: Logger) throws {
        let extractor = packageExtractor(config: config, logger: logger)
        do {
            try extractor.validate(archiveAt: archive)
        } catch let error as ArchiveError {
            throw APIError(status: .unprocessableContent, code: 170002, title: "CF-AppBitsUploadInvalid",
                           detail: "The app upload is invalid: \(Self.describe(error))")
        }
    }
}
