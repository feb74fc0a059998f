import Archives
import Foundation
import Hummingbird
import Logging
import MultipartKit
import NIOCore
import PlatformModels
import PostgresStore

/// `/v3/packages`: app bits. An upload streams to the blobstore's temp area under a size cap
/// (413 as soon as it is exceeded), then every entry of the archive is validated with libarchive
/// (extracted into a scratch directory with the safe extractor, which refuses traversal,
/// outside symlinks, hardlinks, devices and bombs and names the entry at fault) before the
/// package becomes READY. A refused or interrupted upload leaves the package FAILED and no file behind.
///
/// The multipart `resources` field names files left out of `bits` because the resource pool
/// holds them (`POST /v3/resource_matches`), as a JSON array in CF's v3 shape
/// (`{"checksum":{"value":sha1},"size_in_bytes","path","mode"}`) or v2 shape
/// (`{"fn","sha1","size","mode"}`); the package is then built from both (`assemblePackage`).
/// After a package is stored, its files within the pool's size bounds join the pool.
///
/// Stored format: a package blob is an archive whose format is detected from its content, as
/// the safe extractor does, never from a name: the uploaded archive itself (zip or tar.gz, as
/// sent) when `resources` is empty or absent, else a tar.gz written by `TarGzWriter` (owner
/// vcap, modes 0644/0755, symlinks kept as links). `data.checksum` is its SHA-256.
struct PackagesController {
    let services: Services
    static let columns = """
        packages.guid, packages.app_guid, packages.state, packages.blob_sha256, packages.error, packages.labels,
        packages.annotations, packages.created_at, packages.updated_at
        """

    func register(_ group: RouterGroup<ControllerContext>) {
        group.get("packages", use: list)
        group.post("packages", use: create)
        group.get("packages/:guid", use: get)
        group.post("packages/:guid/upload", use: upload)
        group.get("apps/:guid/packages", use: listForApp)
    }

    func resource(_ row: PostgresRow) throws -> PackageResource {
        let guid = try row.decode("guid", as: String.self)
        let app = try row.decode("app_guid", as: String.self)
        return PackageResource(
            guid: guid, createdAt: try Rows.timestamp(row, "created_at"), updatedAt: try Rows.timestamp(row, "updated_at"),
            data: .init(checksum: .init(value: try row.decode("blob_sha256", as: String?.self)),
                        error: try row.decode("error", as: String?.self)),
            state: try row.decode("state"), relationships: ["app": ToOneRelationship(guid: app)], metadata: try Rows.metadata(row),
            links: ["self": services.link("/v3/packages/\(guid)"), "upload": services.link("/v3/packages/\(guid)/upload", post: true),
                    "download": Link(href: services.url("/v3/packages/\(guid)/download"), method: "GET"),
                    "app": services.link("/v3/apps/\(app)")])
    }

    private func listResponse(_ request: Request, actor: Actor, app: String?, path: String) async throws -> Response {
        let query = try ListQuery(try QueryParameters(rawQuery: request.uri.query), filters: ["guids", "states", "app_guids", "space_guids"],
                                  orderable: ["created_at": "created_at", "updated_at": "updated_at"])
        var filter = SQLFilter()
        if !actor.isAdmin { filter.add("apps.space_guid IN (\(Visibility.spaces(filter.bind(actor.userGuid))))") }
        if let app { filter.add("packages.app_guid = \(filter.bind(app))") }
        if let guids = try query.guids("guids") { filter.add("packages.guid = ANY(\(filter.bind(guids))::uuid[])") }
        if let states = try query.parameters.list("states") { filter.add("packages.state = ANY(\(filter.bind(states))::text[])") }
        if let apps = try query.guids("app_guids") { filter.add("packages.app_guid = ANY(\(filter.bind(apps))::uuid[])") }
        if let spaces = try query.guids("space_guids") { filter.add("apps.space_guid = ANY(\(filter.bind(spaces))::uuid[])") }
        query.applyLabels(to: &filter, column: "packages.labels")
        let services = self.services
        return try await services.list(select: Self.columns, from: "packages JOIN apps ON apps.guid = packages.app_guid",
                                       table: "packages", filter: filter, query: query, path: path) {
            try PackagesController(services: services).resource($0)
        }
    }

    @Sendable func list(_ request: Request, context: ControllerContext) async throws -> Response {
        try await listResponse(request, actor: try context.requireActor(), app: nil, path: "/v3/packages")
    }

    @Sendable func listForApp(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let app = try services.guidParameter(context, resource: "App")
        _ = try await services.db.read { conn in try AppsController.load(conn, guid: app, actor: actor).0["guid"] }
        return try await listResponse(request, actor: actor, app: app, path: "/v3/apps/\(app)/packages")
    }

    static func load(_ conn: PostgresConnection, guid: String, actor: Actor) throws -> (PostgresRow, RoleSet) {
        guard let row = try conn.query(
            "SELECT \(columns), apps.space_guid FROM packages JOIN apps ON apps.guid = packages.app_guid WHERE packages.guid = $1",
            [guid]).first
        else { throw APIError.notFound("Package") }
        let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: try row.decode("space_guid"))
        guard roles.canSeeSpace else { throw APIError.notFound("Package") }
        return (row, roles)
    }

    @Sendable func get(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Package")
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor).0 }
        return try JSONResponse.make(try resource(row))
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let body = try await services.body.decode(CreatePackageRequest.self, from: request, allowedKeys: ["type", "relationships", "metadata", "data"])
        guard body.type == "bits" else { throw APIError.unprocessable("Type must be 'bits'") }
        let app = try Validate.relationshipGuid(body.relationships.app, "app")
        let metadata = try Labels.merge(Metadata(), body.metadata)
        let row = try await services.db.write { conn in
            guard let appRow = try conn.query("SELECT name, space_guid FROM apps WHERE guid = $1", [app]).first else {
                throw APIError.unprocessable("Invalid app. Ensure that the app exists and you have access to it.")
            }
            let space = try appRow.decode("space_guid", as: String.self)
            let roles = try RoleSet.forSpace(conn, actor: actor, spaceGuid: space)
            guard roles.canSeeSpace else { throw APIError.unprocessable("Invalid app. Ensure that the app exists and you have access to it.") }
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            let guid = Rows.newGuid()
            try conn.query("INSERT INTO packages(guid, app_guid, labels, annotations) VALUES ($1, $2, $3, $4)",
                           [guid, app, Rows.json(metadata.labels), Rows.json(metadata.annotations)])
            try AuditLog.record(conn, "audit.app.package.create", actor: actor,
                                target: .init(guid: app, type: "app", name: try appRow.decode("name")), spaceGuid: space,
                                data: ["package_guid": .string(guid)])
            return try Self.load(conn, guid: guid, actor: actor).0
        }
        return try JSONResponse.make(try resource(row), status: .created)
    }

    @Sendable func upload(_ request: Request, context: ControllerContext) async throws -> Response {
        let actor = try context.requireActor()
        let guid = try services.guidParameter(context, resource: "Package")
        try await services.acceptUpload(request, table: "packages", noun: "Package", guid: guid, storedState: "READY", formatHint: "",
                                        usesResourcePool: true) { conn in
            let (row, roles) = try Self.load(conn, guid: guid, actor: actor)
            guard roles.isSpaceDeveloper else { throw APIError.notAuthorized() }
            return try row.decode("state", as: String.self)
        }
        let row = try await services.db.read { conn in try Self.load(conn, guid: guid, actor: actor).0 }
        return try JSONResponse.make(try resource(row))
    }

    static func boundary(_ contentType: String?) -> String? {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for part in contentType.split(separator: ";").dropFirst() {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].lowercased() == "boundary" {
                let value = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return (1...70).contains(value.count) ? value : nil
            }
        }
        return nil
    }

}

/// Feeds MultipartKit's streaming parser and routes part bodies by field name.
final class MultipartCollector: @unchecked Sendable {
    private let parser: MultipartParser
    private var currentName: String?
    private(set) var pendingBits: [UInt8] = []
    private(set) var sawBits = false
    private(set) var resources: String?
    private var resourceBytes: [UInt8] = []
    private(set) var done = false
    private var failure: APIError?

    init(boundary: String) {
        parser = MultipartParser(boundary: boundary)
        parser.onHeader = { [unowned self] name, value in
            if name.lowercased() == "content-disposition" { self.currentName = Self.fieldName(value) }
        }
        parser.onBody = { [unowned self] buffer in
            switch self.currentName {
            case "bits":
                self.sawBits = true
                self.pendingBits.append(contentsOf: buffer.readableBytesView)
            case "resources":
                self.resourceBytes.append(contentsOf: buffer.readableBytesView)
                if self.resourceBytes.count > 4 << 20 {
                    self.failure = APIError.unprocessable("The 'resources' field is larger than 4 MiB")
                }
            default:
                self.failure = APIError.unprocessable("Unknown upload field '\(self.currentName ?? "")': expected 'bits' and 'resources'")
            }
        }
        parser.onPartComplete = { [unowned self] in
            if self.currentName == "resources" { self.resources = String(decoding: self.resourceBytes, as: UTF8.self) }
            self.currentName = nil
        }
    }

    func feed(_ chunk: ByteBuffer) throws {
        try parser.execute(chunk)
        if let failure { throw failure }
    }

    func takeBits() -> [UInt8] {
        defer { pendingBits.removeAll(keepingCapacity: true) }
        return pendingBits
    }

    static func fieldName(_ disposition: String) -> String? {
        for part in disposition.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == "name" { return kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }
}
