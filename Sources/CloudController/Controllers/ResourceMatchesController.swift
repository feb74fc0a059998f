import Foundation
import Hummingbird
import PlatformModels

/// `POST /v3/resource_matches`: which of the client's files the platform already holds, so
/// `cf push` uploads only the others (and names these in the upload's `resources` field).
///
/// Any authenticated user may ask. The body is `{"resources": [{"checksum": {"value": sha1},
/// "size_in_bytes": n, "path": "a/b", "mode": "644"}, ...]}` with at most 5000 entries, each
/// checked strictly (422 naming the entry and field); the answer is 201 with the entries the
/// resource pool holds, in the same shape and order. Sizes outside the pool's bounds
/// (`controller.resource_pool_min_bytes` and `_max_bytes`) never match.
struct ResourceMatchesController {
    let services: Services

    func register(_ group: RouterGroup<ControllerContext>) {
        group.post("resource_matches", use: create)
    }

    @Sendable func create(_ request: Request, context: ControllerContext) async throws -> Response {
        _ = try context.requireActor()
        let buffer = try await services.body.collect(request)
        let data = Data(buffer.readableBytesView)
        guard !data.isEmpty else { throw APIError.messageParse("the request body is empty") }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw APIError.messageParse("the body is not valid JSON")
        }
        guard let object = value.objectValue else { throw APIError.messageParse("the body must be a JSON object") }
        let unknown = Set(object.keys).subtracting(["resources"]).sorted()
        guard unknown.isEmpty else {
            throw APIError.unprocessable("Unknown field(s): " + unknown.map { "'\($0)'" }.joined(separator: ", "))
        }
        guard let list = object["resources"] else { throw APIError.unprocessable("resources is required") }
        let resources = try services.resourceReader(field: "resources", allowV2: false, requirePath: false,
                                                    maxCount: ResourcePool.maxMatchRequest).read(list)

        let pool = ResourcePool(config: services.config)
        let wanted = resources.map(\.key).filter { pool.accepts(size: $0.size) }
        let held = wanted.isEmpty ? [:] : try await services.db.write { conn in try ResourcePool.held(conn, wanted) }
        let matched = resources.filter { pool.accepts(size: $0.key.size) && held[$0.key] != nil }
        return try JSONResponse.make(ResourceMatchList(resources: matched.map(\.wire)), status: .created)
    }
}
