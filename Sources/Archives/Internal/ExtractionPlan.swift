/// Pass 1's verdict: every entry checked against the whole archive, before anything is written.
///
/// It keeps a virtual tree of what the extraction will create, so the rules that need context
/// (duplicates, entries under symlinks, hardlinks to earlier files, symlinks that escape via
/// other symlinks) are decided on the archive alone, never by looking at the disk.
struct ExtractionPlan {
    /// One entry, as pass 2 must write it.
    struct Entry: Equatable {
        enum Kind: Equatable {
            /// `./` or an equivalent naming the root: nothing to write.
            case root
            case file
            case directory
            case symlink(target: String)
            case hardlink(target: String)
        }

        var path: String
        var kind: Kind
        /// Masked permission bits to write (A8).
        var mode: UInt32
        /// Real data bytes, counted in pass 1.
        var size: Int64
    }

    private enum Node {
        case implicitDirectory
        case directory
        case file
        case symlink(target: String)
    }

    let limits: SafeExtractor.Limits
    let allowSymlinks: Bool
    let compressedSize: Int64
    private(set) var entries: [Entry] = []
    private var nodes: [String: Node] = [:]
    private(set) var totalBytes: Int64 = 0

    init(limits: SafeExtractor.Limits, allowSymlinks: Bool, compressedSize: Int64) {
        self.limits = limits
        self.allowSymlinks = allowSymlinks
        self.compressedSize = compressedSize
    }

    /// Directories that only exist because some entry lives inside them.
    var implicitDirectories: [String] {
        nodes.compactMap { path, node in
            if case .implicitDirectory = node { return path }
            return nil
        }
    }

    /// Checks one header against the limits and everything seen so far, and records it.
    mutating func add(_ header: EntryHeader) throws {
        let name = header.displayName
        func refuse(_ kind: ArchiveError.Kind, _ reason: String) -> ArchiveError {
            ArchiveError(kind, "Entry \(ArchiveError.quoted(name)) \(reason)", entry: name)
        }

        if entries.count >= limits.maxEntries {
            throw refuse(.limitExceeded, "exceeds the limit of \(limits.maxEntries) entries")
        }
        guard let raw = header.rawName else {
            throw refuse(.unsafePath, "has a name that cannot be read")
        }
        let path: String
        do {
            path = try EntryPathPolicy.normalize(raw, maxLength: limits.maxPathLength, maxDepth: limits.maxPathDepth)
        } catch {
            throw refuse(error.kind, error.reason)
        }

        let kind: Entry.Kind
        switch header.type {
        case .special(let bits):
            throw refuse(.unsupportedEntryType, "is a \(Self.describe(bits)), which is not allowed")
        case .regular:
            kind = .file
        case .directory:
            kind = .directory
        case .symlink:
            guard allowSymlinks else {
                throw refuse(.unsupportedEntryType, "is a symlink, and symlinks are not allowed")
            }
            do {
                kind = .symlink(target: try EntryPathPolicy.symlinkTarget(header.symlinkTarget ?? [], maxLength: limits.maxPathLength))
            } catch {
                throw refuse(error.kind, error.reason)
            }
        case .hardlink:
            let target: String
            do {
                target = try EntryPathPolicy.normalize(
                    header.hardlinkTarget ?? [], maxLength: limits.maxPathLength, maxDepth: limits.maxPathDepth)
            } catch {
                throw refuse(.unsafeLink, "is a hardlink whose target \(error.reason)")
            }
            guard case .file = nodes[target] else {
                throw refuse(.unsafeLink, "is a hardlink to \(ArchiveError.quoted(target)), which is not an earlier regular file in the archive")
            }
            // CVE-2016-5418: data on a hardlink entry is written through the link to its target.
            if let size = header.declaredSize, size > 0 {
                throw refuse(.unsafeLink, "is a hardlink that carries \(size) bytes of data")
            }
            kind = .hardlink(target: target)
        }

        if path.isEmpty {
            guard kind == .directory else { throw refuse(.unsafePath, "names the extraction root itself") }
            entries.append(Entry(path: "", kind: .root, mode: 0o755, size: 0))
            return
        }

        try placeParents(of: path, refuse: refuse)
        switch (nodes[path], kind) {
        case (nil, _):
            break
        case (.implicitDirectory, .directory):
            break  // a directory entry after entries inside it: common in zips
        case (.symlink, _):
            throw refuse(.duplicateEntry, "duplicates an earlier symlink of the same name")
        case (.file, .directory), (.directory, .file), (.implicitDirectory, _):
            throw refuse(.duplicateEntry, "is both a file and a directory in this archive")
        default:
            throw refuse(.duplicateEntry, "appears twice in the archive")
        }

        switch kind {
        case .directory, .root: nodes[path] = .directory
        case .file, .hardlink: nodes[path] = .file
        case .symlink(let target):
            nodes[path] = .symlink(target: target)
            // Refuse obvious escapes now; `verifySymlinks` repeats this once all links are known.
            if !resolvesInside(link: path, target: target) {
                throw refuse(.unsafeLink, "is a symlink to \(ArchiveError.quoted(target)), which points outside of the root folder")
            }
        }
        let mode: UInt32 = switch kind {
        case .file, .hardlink: (header.permissions & 0o100) != 0 ? 0o755 : 0o644
        default: 0o755
        }
        entries.append(Entry(path: path, kind: kind, mode: mode, size: 0))
    }

    /// Counts `count` more data bytes of the current (last added) entry against the caps.
    mutating func addData(_ count: Int, declaredSize: Int64?, isZip: Bool) throws {
        guard let index = entries.indices.last else { return }
        let name = entries[index].path
        func refuse(_ kind: ArchiveError.Kind, _ reason: String) -> ArchiveError {
            ArchiveError(kind, "Entry \(ArchiveError.quoted(name)) \(reason)", entry: name)
        }
        entries[index].size += Int64(count)
        totalBytes += Int64(count)
        if case .hardlink = entries[index].kind {
            throw refuse(.unsafeLink, "is a hardlink that carries data")
        }
        if totalBytes > limits.maxTotalBytes {
            throw refuse(.limitExceeded, "takes the archive over the limit of \(limits.maxTotalBytes) uncompressed bytes")
        }
        if totalBytes > limits.ratioGraceBytes,
           Double(totalBytes) > limits.maxCompressionRatio * Double(max(compressedSize, 1)) {
            throw refuse(.limitExceeded, "takes the archive over the compression ratio limit of \(limits.maxCompressionRatio) (\(compressedSize) bytes compressed)")
        }
        // Zip headers can lie about sizes; the real stream is what counts (A9).
        if isZip, let declared = declaredSize, entries[index].size > declared {
            throw refuse(.limitExceeded, "declares \(declared) bytes but expands to more")
        }
    }

    /// Checks the finished entry's real size against what a zip header declared.
    func finishEntry(declaredSize: Int64?, isZip: Bool) throws {
        guard isZip, let entry = entries.last, let declared = declaredSize,
              entry.kind == .file, entry.size != declared else { return }
        throw ArchiveError(.invalidArchive, "Invalid zip archive (entry \(ArchiveError.quoted(entry.path)) declares \(declared) bytes but holds \(entry.size))", entry: entry.path)
    }

    /// Re-resolves every symlink with the complete tree: a link may escape through a link added later.
    func verifySymlinks() throws {
        for entry in entries {
            guard case .symlink(let target) = entry.kind else { continue }
            if !resolvesInside(link: entry.path, target: target) {
                throw ArchiveError(.unsafeLink, "Entry \(ArchiveError.quoted(entry.path)) is a symlink to \(ArchiveError.quoted(target)), which points outside of the root folder", entry: entry.path)
            }
        }
    }

    /// Every parent must be a directory (explicit or implicit), never a symlink or a file (A4, A11).
    private mutating func placeParents(of path: String, refuse: (ArchiveError.Kind, String) -> ArchiveError) throws {
        var prefix = ""
        let parts = path.split(separator: "/")
        for part in parts.dropLast() {
            prefix = prefix.isEmpty ? String(part) : prefix + "/" + part
            switch nodes[prefix] {
            case nil: nodes[prefix] = .implicitDirectory
            case .implicitDirectory, .directory: continue
            case .symlink:
                throw refuse(.unsafeLink, "is under \(ArchiveError.quoted(prefix)), which is a symlink; nothing is written through a symlink")
            case .file:
                throw refuse(.duplicateEntry, "is under \(ArchiveError.quoted(prefix)), which is a file")
            }
        }
    }

    /// Resolves `target` from the link's directory inside the virtual tree, following the
    /// archive's own symlinks, and says whether it stays within the root at every step.
    private func resolvesInside(link: String, target: String) -> Bool {
        var stack = link.split(separator: "/").dropLast().map(String.init)
        var pending = Array(EntryPathPolicy.looseComponents(target).reversed())
        var hops = 0
        while let part = pending.popLast() {
            if part == "." { continue }
            if part == ".." {
                if stack.isEmpty { return false }
                stack.removeLast()
                continue
            }
            stack.append(part)
            guard case .symlink(let next) = nodes[stack.joined(separator: "/")] else { continue }
            hops += 1
            // Same bound as the kernel's ELOOP; a loop is refused rather than resolved.
            if hops > 40 || EntryPathPolicy.isAbsolute(next) { return false }
            stack.removeLast()
            pending.append(contentsOf: EntryPathPolicy.looseComponents(next).reversed())
        }
        return true
    }

    private static func describe(_ bits: UInt32) -> String {
        switch bits {
        case LibArchive.characterDevice: "character device"
        case LibArchive.blockDevice: "block device"
        case LibArchive.fifo: "FIFO"
        case LibArchive.socket: "socket"
        default: "special file (type \(String(bits, radix: 8)))"
        }
    }
}
