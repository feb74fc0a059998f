import Archives
import Foundation
import Hummingbird
import Logging
import NIOCore

extension Services {
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
