import Foundation

extension ConfigDocument {
    /// The controller a component talks to: `<section>.controller_url`, else
    /// `controller.external_url`, else the controller's listen address; no trailing slash.
    public func controllerURL(for section: String) throws -> String {
        let listen = try hostPort("controller.listen", default: "127.0.0.1:9022")
        var url = string("\(section).controller_url", default: "")
        if url.isEmpty {
            url = string("controller.external_url", default: "http://\(listen.host):\(listen.port)")
        }
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// A component's id at the controller from `key`, else `<prefix>-<hostname>`; 1-63
    /// lower-case letters, digits, dots or dashes, starting with a letter or digit.
    public func componentID(_ key: String, prefix: String) throws -> String {
        var id = string(key, default: "").lowercased()
        if id.isEmpty { id = Self.defaultComponentID(prefix: prefix) }
        guard Self.isValidComponentID(id) else {
            throw ConfigError("\(key): '\(id)' must be 1-63 lower-case letters, digits, dots or dashes, starting with a letter or digit")
        }
        return id
    }

    /// `<prefix>-<hostname>` (lower-cased, other characters dropped, at most 63 bytes).
    public static func defaultComponentID(prefix: String) -> String {
        let host = ProcessInfo.processInfo.hostName.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }
        return String((prefix + "-" + (host.isEmpty ? "local" : host)).prefix(63))
    }

    public static func isValidComponentID(_ id: String) -> Bool {
        guard let first = id.unicodeScalars.first, id.utf8.count <= 63 else { return false }
        func ok(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("0"..."9").contains(c) }
        return ok(first) && id.unicodeScalars.allSatisfy { ok($0) || $0 == "." || $0 == "-" }
    }
}
