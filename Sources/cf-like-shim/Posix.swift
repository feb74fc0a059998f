import CShimSupport
import Glibc

/// Thin, allocation-light wrappers over the system calls the shim uses.
enum Posix {
    /// The C library's text for an errno value.
    static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }

    /// Writes every byte, retrying on EINTR and short writes. False on any other error.
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard var base = bytes.baseAddress else { return true }
        var left = bytes.count
        while left > 0 {
            let written = write(fd, base, left)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            left -= written
            base += written
        }
        return true
    }

    /// Writes `bytes` fully (see ``writeAll(_:_:)-(_,UnsafeRawBufferPointer)``).
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    /// Writes `text` fully as UTF-8.
    @discardableResult
    static func writeAll(_ fd: Int32, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
    }

    /// The file at `path` from `offset`, at most its last `limit` bytes; nil if unreadable.
    static func readFile(_ path: String, from offset: Int = 0, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        let size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        _ = lseek(fd, off_t(max(offset, size - limit, 0)), SEEK_SET)
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while result.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, limit - result.count)) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    /// Writes `text` to `path` through a temporary file and rename, so readers see all or
    /// nothing; with `durable`, the data is on disk before the rename.
    static func writeFileAtomically(_ path: String, _ text: String, mode: mode_t = 0o640, durable: Bool = false) -> Int32? {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { return errno }
        let wrote = writeAll(fd, text)
        let saved = errno
        if durable { _ = fsync(fd) }
        close(fd)
        guard wrote else {
            unlink(temporary)
            return saved
        }
        guard rename(temporary, path) == 0 else {
            let failed = errno
            unlink(temporary)
            return failed
        }
        return nil
    }

    /// Opens `path` for appending (created with `mode` if missing), close-on-exec.
    static func openAppend(_ path: String, mode: mode_t = 0o640) -> Int32 {
        open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode)
    }

    /// A close-on-exec pipe: (read end, write end).
    static func makePipe() -> (read: Int32, write: Int32)? {
        var fds: [Int32] = [-1, -1]
        guard cflike_pipe_cloexec(&fds) == 0 else { return nil }
        return (fds[0], fds[1])
    }

    /// Sets O_NONBLOCK on `fd`.
    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Wall-clock time in nanoseconds since the Unix epoch.
    static func unixNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Monotonic time in nanoseconds (for intervals and the rate limit).
    static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// How a wait status reads: `exited <code>` or `signaled <signal>`.
    static func describe(waitStatus status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exited \((status >> 8) & 0xff)" : "signaled \(signal)"
    }
}
