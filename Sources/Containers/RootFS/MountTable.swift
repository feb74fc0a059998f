import Foundation

/// The mount points of this process's mount namespace, from `/proc/self/mountinfo`.
public enum MountTable {
    /// Mount points, in mountinfo order (a path mounted twice appears twice).
    public static func current() throws -> [String] {
        parse(try readProcFile("/proc/self/mountinfo"))
    }

    /// The whole of a `/proc` file. Such files report size 0 and hand out their text one page
    /// per `read`, so this reads until end of file: a single read would see only the first
    /// few mounts of a busy host.
    static func readProcFile(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ContainerError.systemCall("open", path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ContainerError.systemCall("read", path, errno: errno)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `path` is a mount point right now.
    public static func isMounted(_ path: String) throws -> Bool {
        try current().contains(path)
    }

    /// The mount points (field 5) of a mountinfo text, with its octal escapes undone.
    static func parse(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 4 else { return nil }
            return unescape(String(fields[4]))
        }
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo`.
    static func unescape(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
