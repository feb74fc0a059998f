/// A file named by its content, CF v3 shape: `POST /v3/resource_matches` takes and answers a
/// list of these, and a package upload's `resources` field lists the ones left out of `bits`.
/// `mode` is octal text (`"644"`, `"755"`); `checksum.value` is the file's SHA-1 in lower-case hex.
public struct BitsResource: Codable, Sendable, Equatable {
    public struct Checksum: Codable, Sendable, Equatable {
        public var value: String
        public init(value: String) { self.value = value }
    }

    public var checksum: Checksum
    public var sizeInBytes: Int64
    public var path: String?
    public var mode: String?

    enum CodingKeys: String, CodingKey {
        case checksum, sizeInBytes = "size_in_bytes", path, mode
    }

    public init(sha1: String, sizeInBytes: Int64, path: String?, mode: String?) {
        self.checksum = Checksum(value: sha1)
        self.sizeInBytes = sizeInBytes
        self.path = path
        self.mode = mode
    }
}

/// Body and answer of `POST /v3/resource_matches`.
public struct ResourceMatchList: Codable, Sendable, Equatable {
    public var resources: [BitsResource]
    public init(resources: [BitsResource]) { self.resources = resources }
}
