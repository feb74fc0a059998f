import Foundation
import TestSupport
import Testing

/// The container formats a crafted archive can be written in.
enum Container: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case zip, tar, tgz
    var testDescription: String { rawValue }
    /// Deliberately misleading extensions: the extractor must detect formats from content.
    var fileName: String {
        switch self {
        case .zip: "upload.bin"
        case .tar: "upload.zip"
        case .tgz: "upload.tar"
        }
    }
    static let tarOnly: [Container] = [.tar, .tgz]
}

/// One entry for the Python crafter; `name` may be anything, `nameHex` carries raw bytes.
struct Entry: Encodable, Sendable {
    var name: String?
    var nameHex: String?
    var type: String = "file"
    var data: String?
    var target: String?
    var mode: Int?
    var uid: Int?
    var size: Int?
    var count: Int?
    var pax: [String: String]?

    enum CodingKeys: String, CodingKey {
        case name, nameHex = "name_hex", type, data, target, mode, uid, size, count, pax
    }

    static func file(_ name: String, _ data: String = "data", mode: Int? = nil) -> Entry {
        Entry(name: name, data: data, mode: mode)
    }
    static func dir(_ name: String, mode: Int? = nil) -> Entry { Entry(name: name, type: "dir", mode: mode) }
    static func symlink(_ name: String, to target: String) -> Entry { Entry(name: name, type: "symlink", target: target) }
    static func hardlink(_ name: String, to target: String, data: String? = nil) -> Entry {
        Entry(name: name, type: "hardlink", data: data, target: target)
    }
    static func special(_ name: String, _ type: String) -> Entry { Entry(name: name, type: type) }
    static func raw(_ bytes: [UInt8], _ data: String = "data") -> Entry {
        Entry(nameHex: bytes.map { String(format: "%02x", $0) }.joined(), data: data)
    }
    static func zeros(_ name: String, size: Int) -> Entry { Entry(name: name, type: "zeros", size: size) }
    static func many(_ count: Int) -> Entry { Entry(type: "many", count: count) }
}

private struct Spec: Encodable {
    var format: String
    var entries: [Entry]
    var pax: Bool?
    var patchDeclaredSize: Int?
    enum CodingKeys: String, CodingKey {
        case format, entries, pax, patchDeclaredSize = "patch_declared_size"
    }
}

enum Fixtures {
    /// The crafter script, written once per test process.
    static let scriptPath: String = {
        let path = NSTemporaryDirectory() + "archives-fixture-\(getpid()).py"
        // A temp dir we just chose; if this fails every test fails loudly anyway.
        try! fixtureScript.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }()

    /// Crafts an archive with `entries` at `path` in the given container format.
    static func build(_ entries: [Entry], as container: Container, at path: String, pax: Bool = false,
                      patchDeclaredSize: Int? = nil) async throws {
        let spec = Spec(format: container.rawValue, entries: entries, pax: pax ? true : nil,
                        patchDeclaredSize: patchDeclaredSize)
        let specPath = path + ".json"
        try JSONEncoder().encode(spec).write(to: URL(fileURLWithPath: specPath))
        defer { try? FileManager.default.removeItem(atPath: specPath) }
        _ = try await python(["build", specPath, path])
    }

    /// One row of a tar listing made by Python's tarfile (an independent reader).
    struct Row: Decodable, Equatable {
        var name: String
        var type: String
        var target: String
        var uid: Int
        var gid: Int
        var uname: String
        var gname: String
        var mode: Int
        var mtime: Int
        var size: Int
    }

    static func list(_ path: String) async throws -> [Row] {
        try JSONDecoder().decode([Row].self, from: await python(["list", path]))
    }

    /// Runs the crafter with an argument vector (never a shell string), waiting off the test pool.
    static func python(_ arguments: [String]) async throws -> Data {
        let result = try await ChildProcess.run("/usr/bin/python3", [scriptPath] + arguments)
        guard result.status == 0 else { throw FixtureError(message: result.errors) }
        return result.stdout
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { "fixture script failed: \(message)" }
}
