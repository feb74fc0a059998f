import Archives
import Foundation
import PlatformModels
import PostgresStore

/// One file a client names by content (SHA-1 and size) instead of sending it: an entry of
/// `POST /v3/resource_matches` or of a package upload's `resources` field.
struct PoolResource: Sendable, Hashable {
    /// How the pool knows a file (CF clients send SHA-1).
    struct Key: Sendable, Hashable, Comparable {
        let sha1: String
        let size: Int64

        static func < (a: Key, b: Key) -> Bool { (a.sha1, a.size) < (b.sha1, b.size) }
    }

    /// The normalised relative path ("" when the client named none, which only a match allows).
    var path: String
    /// The path as sent, echoed back in matches.
    var givenPath: String?
    var key: Key
    /// The mode as sent, as octal text; echoed back in matches.
    var givenMode: String?
    /// What the file is written with: 0755 when the owner may execute it, else 0644 (as
    /// archive entries are masked, SECURITY.md A8; no setuid, setgid or sticky bits).
    var permissions: UInt32

    /// The CF v3 wire shape; the mode defaults to 644 because the cf CLI parses it unconditionally.
    var wire: BitsResource {
        BitsResource(sha1: key.sha1, sizeInBytes: key.size, path: givenPath, mode: givenMode ?? "644")
    }
}

/// The resource pool: files of stored packages a client need not upload again.
///
/// Entries live in the `resource_pool` table keyed by SHA-1 and size, each pointing at a blob
/// (SHA-256) in the blobstore holding the file's bytes. An entry is recorded for every regular
/// file of a stored package whose size is within [`minBytes`, `maxBytes`]; only those sizes are
/// ever matched, so small files (the ones whose content could be guessed from a checksum) are
/// always uploaded. Holding an entry's SHA-1 and size is treated as holding the file, as in CF.
///
/// Bounded by the janitor (`prune`): entries neither matched, used nor re-recorded for
/// `maxIdleDays` go, then the least recently used ones until the pooled files total at most
/// `maxTotalBytes`. Their blobs are then collected like any unreferenced blob. A client that
/// was told a file is held but finds it pruned before its upload gets a 422 naming the file and
/// simply uploads it.
struct ResourcePool: Sendable {
    let minBytes: Int64
    let maxBytes: Int64
    let maxIdleDays: Int
    let maxTotalBytes: Int64

    init(config: ControllerConfig) {
        minBytes = Int64(config.resourcePoolMinBytes)
        maxBytes = Int64(config.resourcePoolMaxBytes)
        maxIdleDays = config.resourcePoolMaxIdleDays
        maxTotalBytes = Int64(config.resourcePoolMaxTotalBytes)
    }

    /// False when `controller.resource_pool_max_total_bytes` is 0: nothing is recorded or matched.
    var isEnabled: Bool { maxTotalBytes > 0 }

    /// Whether a file of this size is recorded and matched at all.
    func accepts(size: Int64) -> Bool {
        isEnabled && size >= minBytes && size <= maxBytes
    }

    /// Most entries one `POST /v3/resource_matches` may name (CF's limit).
    static let maxMatchRequest = 5000

    // MARK: Database

    /// The blob of every entry held for `keys`. Entries not used for an hour have `last_used_at`
    /// renewed; rows another transaction holds are skipped rather than waited for (renewal is
    /// best effort and must never deadlock two uploads naming the same files in another order).
    static func held(_ conn: PostgresConnection, _ keys: [PoolResource.Key]) throws -> [PoolResource.Key: String] {
        let unique = Array(Set(keys)).sorted()
        guard !unique.isEmpty else { return [:] }
        let sha1s = unique.map(\.sha1)
        let sizes = unique.map(\.size)
        try conn.query("""
            WITH idle AS (
              SELECT p.sha1, p.size_bytes FROM resource_pool p
                JOIN unnest($1::text[], $2::bigint[]) AS q(sha1, size_bytes) ON p.sha1 = q.sha1 AND p.size_bytes = q.size_bytes
              WHERE p.last_used_at < now() - interval '1 hour'
              ORDER BY p.sha1, p.size_bytes
              FOR UPDATE OF p SKIP LOCKED)
            UPDATE resource_pool p SET last_used_at = now() FROM idle
            WHERE p.sha1 = idle.sha1 AND p.size_bytes = idle.size_bytes
            """, [sha1s, sizes])
        let rows = try conn.query("""
            SELECT p.sha1, p.size_bytes, p.blob_sha256 FROM resource_pool p
              JOIN unnest($1::text[], $2::bigint[]) AS q(sha1, size_bytes) ON p.sha1 = q.sha1 AND p.size_bytes = q.size_bytes
            """, [sha1s, sizes])
        var found: [PoolResource.Key: String] = [:]
        for row in rows {
            let key = PoolResource.Key(sha1: try row.decode("sha1"), size: try row.decode("size_bytes"))
            found[key] = try row.decode("blob_sha256", as: String.self)
        }
        return found
    }

    /// Records (or renews) entries; a key already held points at the new blob, which has the same content.
    static func record(_ conn: PostgresConnection, _ entries: [PoolResource.Key: String]) throws {
        let keys = entries.keys.sorted()  // one order for every writer: concurrent uploads never deadlock
        guard !keys.isEmpty else { return }
        try conn.query("""
            INSERT INTO resource_pool(sha1, size_bytes, blob_sha256)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])
            ON CONFLICT (sha1, size_bytes) DO UPDATE SET blob_sha256 = EXCLUDED.blob_sha256, last_used_at = now()
            """, [keys.map(\.sha1), keys.map(\.size), keys.map { entries[$0]! }])
    }

    /// Drops entries whose blob turned out missing or corrupt.
    static func forget(_ conn: PostgresConnection, _ keys: [PoolResource.Key]) throws {
        guard !keys.isEmpty else { return }
        try conn.query("""
            DELETE FROM resource_pool p USING unnest($1::text[], $2::bigint[]) AS q(sha1, size_bytes)
            WHERE p.sha1 = q.sha1 AND p.size_bytes = q.size_bytes
            """, [keys.map(\.sha1), keys.map(\.size)])
    }

    /// Keeps the pool bounded: drops entries idle for more than `maxIdleDays`, then the least
    /// recently used ones past `maxTotalBytes` (all of them when the pool is off). Returns how
    /// many entries went; their blobs are left to garbage collection.
    func prune(_ conn: PostgresConnection) throws -> Int {
        let idle = try conn.query(
            "DELETE FROM resource_pool WHERE last_used_at < now() - make_interval(days => $1::int)", [maxIdleDays]).affectedRows
        let over = try conn.query("""
            DELETE FROM resource_pool p USING (
              SELECT sha1, size_bytes,
                     sum(size_bytes) OVER (ORDER BY last_used_at DESC, sha1, size_bytes) AS running
              FROM resource_pool) r
            WHERE p.sha1 = r.sha1 AND p.size_bytes = r.size_bytes AND r.running > $1::bigint
            """, [maxTotalBytes]).affectedRows
        return idle + over
    }
}

/// Reads a list of resources (CF v3 shape, and for uploads also the v2 shape
/// `{"fn","sha1","size","mode"}`), refusing anything malformed with a 422 naming the entry
/// and the field: at most `maxCount` entries, SHA-1 as 40 lower-case hex digits, size a
/// non-negative integer, mode octal text (a v2 entry may give it as a number), paths checked
/// exactly like archive entry names by `normalize`.
struct ResourceListReader {
    /// The field's name in messages (`resources`).
    var field: String
    var allowV2: Bool
    var requirePath: Bool
    var maxCount: Int
    /// Path rules (the safe extractor's entry-name rules).
    var normalize: @Sendable (String) throws -> String

    private static let v3Keys: Set<String> = ["checksum", "size_in_bytes", "path", "mode"]
    private static let v2Keys: Set<String> = ["fn", "sha1", "size", "mode"]

    /// Parses text (the multipart field): invalid JSON is a 422 too.
    func read(text: String) throws -> [PoolResource] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw APIError.unprocessable("The '\(field)' field is not valid JSON: expected an array of resources")
        }
        return try read(value)
    }

    func read(_ value: JSONValue) throws -> [PoolResource] {
        guard case .array(let items) = value else {
            throw APIError.unprocessable("\(field) must be an array of resources")
        }
        guard items.count <= maxCount else {
            throw APIError.unprocessable("\(field) has \(items.count) entries; at most \(maxCount) are accepted")
        }
        var resources: [PoolResource] = []
        resources.reserveCapacity(items.count)
        var seen: Set<String> = []
        for (index, item) in items.enumerated() {
            let resource = try entry(item, at: "\(field)[\(index)]")
            if requirePath, !seen.insert(resource.path).inserted {
                throw APIError.unprocessable("\(field)[\(index)].path '\(resource.path)' is listed more than once")
            }
            resources.append(resource)
        }
        return resources
    }

    private func entry(_ item: JSONValue, at name: String) throws -> PoolResource {
        guard let object = item.objectValue else { throw APIError.unprocessable("\(name) must be an object") }
        let keys = Set(object.keys)
        let isV2 = allowV2 && !keys.isDisjoint(with: ["fn", "sha1", "size"])
        let unknown = keys.subtracting(isV2 ? Self.v2Keys : Self.v3Keys).sorted()
        guard unknown.isEmpty else {
            throw APIError.unprocessable("\(name) has unknown field(s): " + unknown.map { "'\($0)'" }.joined(separator: ", "))
        }

        let sha1Field = isV2 ? "\(name).sha1" : "\(name).checksum.value"
        let sha1Value: JSONValue?
        if isV2 {
            sha1Value = object["sha1"]
        } else {
            guard let checksum = object["checksum"] else { throw APIError.unprocessable("\(name).checksum is required") }
            guard let members = checksum.objectValue else { throw APIError.unprocessable("\(name).checksum must be an object") }
            let extra = Set(members.keys).subtracting(["value"]).sorted()
            guard extra.isEmpty else {
                throw APIError.unprocessable("\(name).checksum has unknown field(s): " + extra.map { "'\($0)'" }.joined(separator: ", "))
            }
            sha1Value = members["value"]
        }
        guard let sha1Value else { throw APIError.unprocessable("\(sha1Field) is required") }
        guard let sha1 = sha1Value.stringValue, Self.isSHA1(sha1) else {
            throw APIError.unprocessable("\(sha1Field) must be a SHA-1 checksum: 40 lower-case hexadecimal digits")
        }

        let sizeField = isV2 ? "\(name).size" : "\(name).size_in_bytes"
        guard let sizeValue = object[isV2 ? "size" : "size_in_bytes"] else { throw APIError.unprocessable("\(sizeField) is required") }
        guard case .number(let number) = sizeValue, number >= 0, number.rounded() == number, number <= 9_007_199_254_740_992 else {
            throw APIError.unprocessable("\(sizeField) must be a non-negative integer")
        }

        let pathField = isV2 ? "\(name).fn" : "\(name).path"
        var givenPath: String?
        var path = ""
        if let pathValue = object[isV2 ? "fn" : "path"] {
            guard let text = pathValue.stringValue else { throw APIError.unprocessable("\(pathField) must be a string") }
            do {
                path = try normalize(text)
            } catch let error as ArchiveError {
                throw APIError.unprocessable("\(pathField) is refused: \(error.message)")
            }
            guard !path.isEmpty else { throw APIError.unprocessable("\(pathField) '\(text)' names no file") }
            givenPath = text
        } else if requirePath {
            throw APIError.unprocessable("\(pathField) is required")
        }

        var givenMode: String?
        var bits: UInt32 = 0o644
        if let modeValue = object["mode"] {
            switch modeValue {
            case .string(let text) where (1...6).contains(text.count) && text.allSatisfy({ ("0"..."7").contains($0) }):
                givenMode = text
                bits = UInt32(text, radix: 8)!
            case .number(let number) where isV2 && number >= 0 && number.rounded() == number && number <= 0o177777:
                bits = UInt32(number)
                givenMode = String(bits, radix: 8)
            default:
                throw APIError.unprocessable("\(name).mode must be file permissions in octal, e.g. \"644\"")
            }
        }
        return PoolResource(path: path, givenPath: givenPath, key: .init(sha1: sha1, size: Int64(number)),
                            givenMode: givenMode, permissions: (bits & 0o100) != 0 ? 0o755 : 0o644)
    }

    static func isSHA1(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
