import Foundation

/// An OCI bundle: a directory holding `config.json` and (usually) the root filesystem.
///
/// The root filesystem may live elsewhere (an overlay mount point): `rootfsPath` resolves the
/// spec's `root.path`, relative paths being relative to the bundle directory as runc reads them.
public struct OCIBundle: Sendable, Equatable {
    /// Absolute path of the bundle directory.
    public let path: String
    /// The spec as written to (or read from) `config.json`.
    public let spec: Spec

    /// Path of `config.json`.
    public var configPath: String { path + "/config.json" }

    /// Absolute path of the root filesystem named by `spec.root`, or `<bundle>/rootfs` if unset.
    public var rootfsPath: String {
        let root = spec.root?.path ?? "rootfs"
        return root.hasPrefix("/") ? root : path + "/" + root
    }

    /// Creates the bundle directory (mode 0700, parents as needed) and writes `config.json`.
    ///
    /// The directory is private because config.json names host paths and the environment.
    /// An existing bundle at `path` has its config replaced.
    @discardableResult
    public static func create(at path: String, spec: Spec) throws -> OCIBundle {
        guard path.hasPrefix("/") else {
            throw ContainerError(.invalidArgument, "bundle path must be absolute: \(path)")
        }
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ContainerError(.io, "cannot create bundle directory \(path)", cause: error)
        }
        let bundle = OCIBundle(path: path, spec: spec)
        try bundle.writeConfig()
        return bundle
    }

    /// Reads the bundle at `path`.
    public static func load(from path: String) throws -> OCIBundle {
        let configPath = path + "/config.json"
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        } catch {
            throw ContainerError(.notFound, "cannot read \(configPath)", cause: error)
        }
        do {
            return OCIBundle(path: path, spec: try JSONDecoder().decode(Spec.self, from: data))
        } catch {
            throw ContainerError(.decoding, "invalid config.json in \(path)", cause: error)
        }
    }

    /// Removes the bundle directory and everything in it.
    ///
    /// Refuses when something is still mounted under it (a forgotten overlay), because deleting
    /// through a mount would delete the mounted files.
    public func remove() throws {
        if let mounted = try MountTable.current().first(where: { $0 == path || $0.hasPrefix(path + "/") }) {
            throw ContainerError(.invalidArgument, "refusing to remove bundle \(path): \(mounted) is still mounted")
        }
        do {
            if FileManager.default.fileExists(atPath: path) {
                try FileManager.default.removeItem(atPath: path)
            }
        } catch {
            throw ContainerError(.io, "cannot remove bundle \(path)", cause: error)
        }
    }

    /// The canonical JSON for a spec: sorted keys, so equal specs give equal bytes.
    public static func encode(_ spec: Spec) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(spec)
        } catch {
            throw ContainerError(.decoding, "cannot encode spec", cause: error)
        }
    }

    private func writeConfig() throws {
        let data = try Self.encode(spec)
        do {
            // Atomic so a crash never leaves runc a half-written config.
            try data.write(to: URL(fileURLWithPath: configPath), options: [.atomic])
            _ = chmod(configPath, 0o600)
        } catch {
            throw ContainerError(.io, "cannot write \(configPath)", cause: error)
        }
    }
}
