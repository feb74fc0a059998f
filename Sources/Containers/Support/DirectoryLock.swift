import Glibc
import Synchronization

/// One process's exclusive hold on a directory: a `flock(2)` lock on a file in it, kept until
/// ``release()``, deinit or the process's exit, however it dies.
///
/// Two agents (or stagers) on one state directory share runc's state, instance directories and
/// network, and each tears down what the other starts; the lock makes the second one refuse to
/// start instead. The descriptor is close-on-exec: runc and the shims, which outlive the agent,
/// must never inherit it, or a shim would keep the directory locked after its agent is gone.
public final class DirectoryLock: Sendable {
    /// The lock file's name inside the locked directory.
    public static let fileName = "owner.lock"

    /// The locked directory.
    public let directory: String
    /// The lock file; it holds the owner's pid while it is locked.
    public let path: String
    private let descriptor: Mutex<Int32>

    /// Takes the lock on `directory` (created with mode 0700 when missing) without waiting.
    /// Throws `.inUse` naming the holder's pid when another open file holds it.
    public init(directory: String) throws {
        self.directory = directory
        self.path = ShimStateDirectory.path(directory, Self.fileName)
        try Self.makeDirectory(directory)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw ContainerError.systemCall("open", path, errno: errno) }
        if let failure = Self.lockExclusively(fd, path: path, directory: directory) {
            close(fd)
            throw failure
        }
        do {
            try Self.record(pid: getpid(), in: fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        descriptor = Mutex(fd)
    }

    deinit { release() }

    /// Gives the lock up; calling it again does nothing.
    public func release() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            // A free lock file names nobody, so a reader never mistakes an old owner for a live one.
            _ = ftruncate(fd, 0)
            close(fd)
            fd = -1
        }
    }

    // MARK: Taking the lock

    private static func makeDirectory(_ directory: String) throws {
        var components: [Substring] = []
        for part in directory.split(separator: "/") {
            components.append(part)
            let prefix = (directory.hasPrefix("/") ? "/" : "") + components.joined(separator: "/")
            if mkdir(prefix, 0o700) != 0, errno != EEXIST {
                throw ContainerError.systemCall("mkdir", prefix, errno: errno)
            }
        }
    }

    /// nil once `fd` holds the lock; otherwise the error to throw.
    private static func lockExclusively(_ fd: Int32, path: String, directory: String) -> ContainerError? {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            guard code == EWOULDBLOCK else { return ContainerError.systemCall("flock", path, errno: code) }
            let holder = holderPID(fd)
            let who = holder.map { "pid \($0)" } ?? "another process (its pid is not recorded in \(path))"
            return ContainerError(
                .inUse,
                "\(directory) is in use by \(who), which holds \(path): one process owns this directory at a time; stop that one first")
        }
        return nil
    }

    private static func record(pid: pid_t, in fd: Int32, path: String) throws {
        let text = Array("\(pid)\n".utf8)
        guard ftruncate(fd, 0) == 0 else { throw ContainerError.systemCall("ftruncate", path, errno: errno) }
        let written = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == text.count else { throw ContainerError.systemCall("write", path, errno: errno) }
    }

    // MARK: Naming the holder

    /// The pid the holder wrote into the lock file; else the one `/proc/locks` shows for the file.
    private static func holderPID(_ fd: Int32) -> pid_t? {
        // The holder writes its pid right after it locks: a reader that lost a race to a
        // starting holder waits a moment for it.
        for attempt in 0..<10 {
            if let pid = recordedPID(fd) { return pid }
            if attempt < 9 { usleep(10_000) }
        }
        return kernelHolderPID(fd)
    }

    private static func recordedPID(_ fd: Int32) -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        guard let pid = pid_t(text.split(separator: "\n").first ?? ""), pid > 0 else { return nil }
        return pid
    }

    /// The pid of the FLOCK lock on `fd`'s file in `/proc/locks` (lines like
    /// `1: FLOCK  ADVISORY  WRITE 1234 08:02:131090 0 EOF`; waiters are marked `->`).
    private static func kernelHolderPID(_ fd: Int32) -> pid_t? {
        var st = stat()
        guard fstat(fd, &st) == 0, let table = try? MountTable.readProcFile("/proc/locks") else { return nil }
        let device = UInt64(st.st_dev)
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        let file = String(major, radix: 16).leftPadded(to: 2) + ":" + String(minor, radix: 16).leftPadded(to: 2) + ":\(st.st_ino)"
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5] == file else { continue }
            return pid_t(fields[4])
        }
        return nil
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
