#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// An overlay filesystem: read-only lower layers under a writable upper layer, seen at `target`.
///
/// Mounted with mount(2) directly (no `mount` program, no shell). Paths may not contain `,`,
/// `:` or `=` because the kernel splits the option string on them.
public struct OverlayMount: Sendable, Equatable {
    /// Lower layers, topmost first (the kernel's `lowerdir` order).
    public var lowerDirs: [String]
    /// The writable layer.
    public var upperDir: String
    /// The overlay's scratch directory; same filesystem as `upperDir`, empty.
    public var workDir: String
    /// Where the merged view appears.
    public var target: String

    /// An overlay description; nothing is mounted until ``mount()``.
    public init(lowerDirs: [String], upperDir: String, workDir: String, target: String) {
        self.lowerDirs = lowerDirs
        self.upperDir = upperDir
        self.workDir = workDir
        self.target = target
    }

    /// The `data` argument passed to mount(2).
    public func optionString() throws -> String {
        guard !lowerDirs.isEmpty else {
            throw ContainerError(.invalidArgument, "overlay needs at least one lower directory")
        }
        for path in lowerDirs + [upperDir, workDir, target] {
            guard path.hasPrefix("/"), !path.contains(","), !path.contains(":"), !path.contains("=") else {
                throw ContainerError(.invalidArgument, "overlay path must be absolute and free of ',', ':' and '=': \(path)")
            }
        }
        let options = "lowerdir=\(lowerDirs.joined(separator: ":")),upperdir=\(upperDir),workdir=\(workDir)"
        // The kernel copies at most one page of mount data; longer option strings are cut.
        guard options.utf8.count < 4096 else {
            throw ContainerError(.invalidArgument, "overlay options longer than a page (\(options.utf8.count) bytes)")
        }
        return options
    }

    /// Creates `upperDir`, `workDir` and `target` if missing and mounts the overlay.
    public func mount() throws {
        let options = try optionString()
        for dir in [upperDir, workDir, target] {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw ContainerError(.io, "cannot create \(dir)", cause: error)
            }
        }
        guard Glibc.mount("overlay", target, "overlay", 0, options) == 0 else {
            throw ContainerError.systemCall("mount overlay", "on \(target) (\(options))", errno: errno)
        }
    }

    /// Unmounts the overlay at ``target``.
    public func unmount() throws {
        try Self.unmount(target)
    }

    /// Unmounts `target`; when it is busy, detaches it (MNT_DETACH) so it goes once unused.
    /// Not mounted is not an error, so cleanup paths may call it twice.
    public static func unmount(_ target: String) throws {
        if umount2(target, 0) == 0 { return }
        let first = errno
        switch first {
        case EINVAL where !((try? MountTable.isMounted(target)) ?? true):
            return // not a mount point
        case ENOENT:
            return
        default:
            break
        }
        guard umount2(target, Int32(MNT_DETACH)) == 0 else {
            let second = errno
            if second == EINVAL, (try? MountTable.isMounted(target)) == false { return }
            throw ContainerError.systemCall("umount2", "\(target) (first: \(ContainerError.errnoText(first)))", errno: second)
        }
    }
}
