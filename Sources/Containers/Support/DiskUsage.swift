import Glibc

/// Bytes a directory tree occupies on disk (allocated blocks), not following symlinks and not
/// crossing into other file systems (mounts below it are skipped).
public enum DiskUsage {
    /// The total under `path`; 0 if it does not exist. Unreadable directories count as empty.
    public static func bytes(under path: String) -> Int64 {
        var total: Int64 = 0
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        let device = st.st_dev
        var stack = [path]
        while let dir = stack.popLast() {
            guard let handle = opendir(dir) else { continue }
            defer { closedir(handle) }
            while let entry = readdir(handle) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name == "." || name == ".." { continue }
                let child = dir + "/" + name
                guard lstat(child, &st) == 0, st.st_dev == device else { continue }
                total += Int64(st.st_blocks) * 512
                if (st.st_mode & S_IFMT) == S_IFDIR { stack.append(child) }
            }
        }
        return total
    }
}
