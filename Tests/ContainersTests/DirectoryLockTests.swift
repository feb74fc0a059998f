import Foundation
import Testing

@testable import Containers

/// One owner per directory: a second lock fails naming the holder, release and exit free it,
/// and a child started after the lock was taken never holds it.
struct DirectoryLockTests {
    static let flock = "/usr/bin/flock"

    private func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "cf-like-dirlock-\(UUID().uuidString.prefix(8))/state"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    private func remove(_ dir: String) {
        try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent)
    }

    @Test func aSecondLockOnTheSameDirectoryFailsNamingTheHoldersPid() throws {
        let dir = try scratch()
        defer { remove(dir) }
        let first = try DirectoryLock(directory: dir)
        #expect(try String(contentsOfFile: first.path, encoding: .utf8) == "\(getpid())\n")
        let error = try #require(throws: ContainerError.self) { try DirectoryLock(directory: dir) }
        #expect(error.kind == .inUse)
        #expect(error.message.contains("in use by pid \(getpid())"), "\(error)")
        #expect(error.message.contains(first.path), "\(error)")
        first.release()
    }

    @Test func theDirectoryIsCreatedWhenMissing() throws {
        let dir = try scratch() + "/below/deeper"
        defer { remove((dir as NSString).deletingLastPathComponent) }
        let lock = try DirectoryLock(directory: dir)
        var st = stat()
        #expect(stat(dir, &st) == 0 && (st.st_mode & 0o777) == 0o700)
        lock.release()
    }

    @Test func releaseAndDeinitFreeTheLock() throws {
        let dir = try scratch()
        defer { remove(dir) }
        let first = try DirectoryLock(directory: dir)
        first.release()
        first.release()
        #expect(try String(contentsOfFile: first.path, encoding: .utf8) == "", "a free lock file names nobody")
        do {
            let second = try DirectoryLock(directory: dir)
            _ = second
        }
        let third = try DirectoryLock(directory: dir)
        third.release()
    }

    /// A holder that wrote no pid (here flock(1)) is named by the pid /proc/locks shows; once it
    /// is killed, the kernel frees the lock.
    @Test func anotherProcessHoldingTheLockIsNamedAndItsExitFreesIt() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.flock), "needs \(Self.flock) (util-linux)")
        let dir = try scratch()
        defer { remove(dir) }
        let file = dir + "/" + DirectoryLock.fileName
        // -o: flock(1) alone holds the lock, not the sleep it runs.
        let holder = try spawn([Self.flock, "-o", file, "/bin/sleep", "60"])
        defer { killGroup(holder) }
        var refusal: ContainerError?
        let deadline = ContinuousClock.now + .seconds(20)
        while refusal == nil, ContinuousClock.now < deadline {
            do {
                try DirectoryLock(directory: dir).release()
                try await Task.sleep(for: .milliseconds(20))
            } catch let error as ContainerError {
                refusal = error
            }
        }
        let error = try #require(refusal, "flock(1) never took the lock")
        #expect(error.kind == .inUse)
        #expect(error.message.contains("in use by pid \(holder)"), "\(error)")

        killGroup(holder)
        let lock = try DirectoryLock(directory: dir)
        lock.release()
    }

    /// The lock's descriptor is close-on-exec: a child exec'd while it is held (as runc and the
    /// shim are) does not keep it once the parent lets it go.
    @Test func aChildStartedWhileTheLockIsHeldDoesNotKeepIt() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.flock), "needs \(Self.flock) (util-linux)")
        let dir = try scratch()
        defer { remove(dir) }
        let lock = try DirectoryLock(directory: dir)
        // posix_spawn closes nothing: only close-on-exec keeps the descriptor from the child.
        let child = try spawn(["/bin/sleep", "60"])
        defer { killGroup(child) }
        #expect(try freeFromAnotherProcess(lock.path) == false, "flock(1) must see the lock held")

        lock.release()
        #expect(kill(child, 0) == 0, "the child still runs")
        // Other tests fork children meanwhile, and a forked child shares the descriptor until
        // its exec closes it: the lock may stay held for that moment. A child that kept the
        // descriptor would hold it for its whole 60 s, so a few seconds tell the two apart.
        let deadline = ContinuousClock.now + .seconds(10)
        var free = try freeFromAnotherProcess(lock.path)
        while !free, ContinuousClock.now < deadline {
            usleep(50_000)
            free = try freeFromAnotherProcess(lock.path)
        }
        #expect(free, "the lock stayed held after the parent released it")
        #expect(kill(child, 0) == 0, "the child still ran while the lock was free")
    }

    // MARK: Helpers

    /// Whether `flock -n` in another process gets the lock at once. It never waits, so this
    /// holds a pool thread for milliseconds only.
    private func freeFromAnotherProcess(_ path: String) throws -> Bool {
        let pid = try spawn([Self.flock, "-n", "-E", "75", path, "/bin/true"])
        let status = try wait(pid)
        guard status == 0 || status == 75 else {
            throw ContainerError(.commandFailed, "flock -n \(path) exited \(status)", exitStatus: status)
        }
        return status == 0
    }

    /// Starts `argv` in a process group of its own (so its children can be killed with it).
    private func spawn(_ argv: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], nil, &attributes, &cArgs, environ)
        guard rc == 0 else { throw ContainerError.systemCall("posix_spawn", argv[0], errno: rc) }
        return pid
    }

    private func wait(_ pid: pid_t) throws -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw ContainerError.systemCall("waitpid", "\(pid)", errno: errno) }
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    private func killGroup(_ pid: pid_t) {
        guard kill(-pid, SIGKILL) == 0 else { return }
        _ = try? wait(pid)
    }
}
