extension SafeExtractor {
    /// Caps that stop archive bombs and pathological names (SECURITY.md A9, A10).
    public struct Limits: Sendable, Equatable {
        /// Largest total of real (decompressed) data bytes over all entries.
        public var maxTotalBytes: Int64
        /// Largest number of entries, directories and links included.
        public var maxEntries: Int
        /// Largest ratio of total uncompressed bytes to the archive file's size.
        public var maxCompressionRatio: Double
        /// Below this many uncompressed bytes the ratio is not checked: tiny archives of
        /// repetitive text compress far beyond any sane ratio without being bombs.
        public var ratioGraceBytes: Int64
        /// Longest normalised entry path (and symlink target), in UTF-8 bytes.
        public var maxPathLength: Int
        /// Most path components in an entry name.
        public var maxPathDepth: Int

        /// Creates limits; every field has a default suited to uploaded app bits.
        public init(
            maxTotalBytes: Int64 = 2 << 30,
            maxEntries: Int = 65_536,
            maxCompressionRatio: Double = 200,
            ratioGraceBytes: Int64 = 1 << 20,
            maxPathLength: Int = 1024,
            maxPathDepth: Int = 64
        ) {
            self.maxTotalBytes = maxTotalBytes
            self.maxEntries = maxEntries
            self.maxCompressionRatio = maxCompressionRatio
            self.ratioGraceBytes = ratioGraceBytes
            self.maxPathLength = maxPathLength
            self.maxPathDepth = maxPathDepth
        }

        /// 2 GiB uncompressed, 65 536 entries, ratio 200 past 1 MiB, paths of 1024 bytes and 64 levels.
        public static let `default` = Limits()
    }

    /// How extracted entries are owned and which entry kinds are accepted.
    public struct Options: Sendable, Equatable {
        /// A numeric owner to `lchown` every extracted path (and a created root) to.
        public struct Owner: Sendable, Equatable {
            /// User id.
            public var uid: UInt32
            /// Group id.
            public var gid: UInt32
            /// Creates an owner.
            public init(uid: UInt32, gid: UInt32) {
                self.uid = uid
                self.gid = gid
            }
        }

        /// Owner for everything extracted, or nil to leave files owned by the calling process.
        public var owner: Owner?
        /// Whether symlinks that stay inside the root are extracted (true) or refused (false).
        public var allowSymlinks: Bool

        /// Creates options; by default no chown and inside-root symlinks allowed.
        public init(owner: Owner? = nil, allowSymlinks: Bool = true) {
            self.owner = owner
            self.allowSymlinks = allowSymlinks
        }
    }
}
