import Foundation
import Hummingbird
import PlatformModels

/// `GET /internal/v1/droplets/:guid/download`: a STAGED droplet's bits for the agents.
///
/// Streamed from the blobstore (`Services.blobResponse`): constant memory whatever the
/// droplet's size, `X-Content-SHA256` carries the digest the agent checks, and a blob that no
/// longer matches its name aborts the transfer.
struct DropletDownloadController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("v1/droplets/:guid/download", use: download)
    }

    @Sendable func download(_ request: Request, context: ControllerContext) async throws -> Response {
        let guid = try services.guidParameter(context, resource: "Droplet")
        let sha = try await services.db.read { conn in
            try conn.query("SELECT blob_sha256 FROM droplets WHERE guid = $1 AND state = 'STAGED'", [guid]).first?
                .decode("blob_sha256", as: String?.self)
        }
        guard let sha else { throw APIError.notFound("Droplet") }
        return try await services.blobResponse(sha, contentType: "application/gzip", notFound: APIError.notFound("Droplet"),
                                               metadata: ["droplet.guid": .string(guid)])
    }
}
