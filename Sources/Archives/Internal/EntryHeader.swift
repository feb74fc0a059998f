import CLibArchive

/// A Swift copy of the parts of a libarchive entry header the extractor decides on.
struct EntryHeader {
    /// What the entry is, as far as extraction policy cares.
    enum EntryType: Equatable {
        case regular
        case directory
        case symlink
        case hardlink
        /// Device, FIFO, socket or unknown; carries the raw file type bits.
        case special(UInt32)
    }

    /// The name's raw bytes, or nil when libarchive could not produce one.
    var rawName: [UInt8]?
    var type: EntryType
    /// Permission bits as stored in the archive (including setuid/setgid/sticky).
    var permissions: UInt32
    /// The size the header declares, if it declares one.
    var declaredSize: Int64?
    /// Symlink target bytes (for `.symlink`).
    var symlinkTarget: [UInt8]?
    /// Hardlink target name bytes (for `.hardlink`).
    var hardlinkTarget: [UInt8]?

    /// The name for messages: lossy UTF-8, never nil.
    var displayName: String {
        guard let rawName else { return "<unnamed entry>" }
        return String(decoding: rawName, as: UTF8.self)
    }

    /// Reads the header fields out of a libarchive entry (owned by the reader).
    init(_ entry: OpaquePointer) {
        rawName = LibArchive.bytes(archive_entry_pathname(entry))
        permissions = UInt32(archive_entry_perm(entry)) & 0o7777
        declaredSize = archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : nil
        symlinkTarget = nil
        hardlinkTarget = nil
        if let link = archive_entry_hardlink(entry) {
            type = .hardlink
            hardlinkTarget = LibArchive.bytes(link)
            return
        }
        let fileType = UInt32(archive_entry_filetype(entry)) & LibArchive.typeMask
        switch fileType {
        case LibArchive.regular: type = .regular
        case LibArchive.directory: type = .directory
        case LibArchive.symlink:
            type = .symlink
            symlinkTarget = LibArchive.bytes(archive_entry_symlink(entry))
        default: type = .special(fileType)
        }
    }
}
