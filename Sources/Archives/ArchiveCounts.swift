/// What an extraction or a packing produced.
public struct ArchiveCounts: Sendable, Equatable {
    /// Regular files (hardlinks included).
    public var files: Int = 0
    /// Directories with their own entry (implicit parents not counted).
    public var directories: Int = 0
    /// Symlinks.
    public var symlinks: Int = 0
    /// Data bytes of regular files.
    public var totalBytes: Int64 = 0
    /// Special files (devices, FIFOs, sockets) left out when packing.
    public var skipped: Int = 0

    /// Creates counts, all zero by default.
    public init(files: Int = 0, directories: Int = 0, symlinks: Int = 0, totalBytes: Int64 = 0, skipped: Int = 0) {
        self.files = files
        self.directories = directories
        self.symlinks = symlinks
        self.totalBytes = totalBytes
        self.skipped = skipped
    }
}
