extension Schema {
    /// The resource pool: files of uploaded packages a client need not send again, keyed as CF
    /// clients name them (SHA-1 and size), each pointing at a blob (SHA-256) holding its bytes.
    /// `last_used_at` moves when an upload records or uses the file and when a match reports it;
    /// the janitor drops idle entries and, past the total size cap, the least recently used
    /// (`ResourcePool.prune`). A pooled blob is referenced for garbage collection like a package's.
    static let resourcePool = """
    CREATE TABLE resource_pool (
        sha1 text NOT NULL CHECK (sha1 ~ '^[0-9a-f]{40}$'),
        size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
        blob_sha256 text NOT NULL CHECK (blob_sha256 ~ '^[0-9a-f]{64}$'),
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (sha1, size_bytes)
    );
    CREATE INDEX resource_pool_last_used ON resource_pool(last_used_at);
    """
}
