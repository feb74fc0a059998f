import CShimSupport
import Glibc

/// Splitting into the short-lived launcher and the long-lived shim, and the readiness pipe
/// between them.
enum Daemon {
    /// Forks. The parent (the launcher) never returns: it waits for the child's one readiness
    /// line, prints it and exits 0 for `started ...`, 1 otherwise. The child returns the
    /// readiness pipe's write end.
    static func fork() -> Int32 {
        guard let readiness = Posix.makePipe() else {
            Posix.writeAll(1, "failed cannot create readiness pipe: \(Posix.errnoText(errno))\n")
            exit(1)
        }
        let child = Glibc.fork()
        if child < 0 {
            Posix.writeAll(1, "failed cannot fork: \(Posix.errnoText(errno))\n")
            exit(1)
        }
        if child > 0 {
            close(readiness.write)
            awaitReadiness(readiness.read, child: child)
        }
        close(readiness.read)
        return readiness.write
    }

    /// The launcher's side: relay the child's verdict.
    private static func awaitReadiness(_ fd: Int32, child: pid_t) -> Never {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(fd, &byte, 1)
            if count < 0, errno == EINTR { continue }
            if count <= 0 || byte == UInt8(ascii: "\n") { break }
            if line.count < 8192 { line.append(byte) }
        }
        var text = String(decoding: line, as: UTF8.self)
        if text.isEmpty {
            var status: Int32 = 0
            let how = waitpid(child, &status, WNOHANG) == child ? Posix.describe(waitStatus: status) : "closed the readiness pipe"
            text = "failed shim \(how) before reporting"
        }
        Posix.writeAll(1, text + "\n")
        exit(text.hasPrefix("started ") ? 0 : 1)
    }

    /// The child's side: its own session, a subreaper, deaf to terminal and stop signals,
    /// stdio away from the launcher's caller, working directory `/`. Throws what went wrong.
    static func detach(stateDir: String) throws(ShimFailure) {
        _ = setsid()
        guard cflike_set_child_subreaper() == 0 else {
            throw ShimFailure("cannot become a child subreaper: \(Posix.errnoText(errno))")
        }
        // The agent going away (its pipe, its session, its stop signal) must not take the shim along.
        for signal in [SIGPIPE, SIGHUP, SIGINT, SIGTERM] {
            _ = Glibc.signal(signal, SIG_IGN)
        }
        if mkdir(stateDir, 0o700) != 0, errno != EEXIST {
            throw ShimFailure("cannot create state directory \(stateDir): \(Posix.errnoText(errno))")
        }
        let devNull = open("/dev/null", O_RDONLY)
        let log = Posix.openAppend(stateDir + "/shim.log")
        guard devNull >= 0, log >= 0 else {
            throw ShimFailure("cannot open /dev/null or \(stateDir)/shim.log: \(Posix.errnoText(errno))")
        }
        dup2(devNull, 0)
        dup2(log, 1)
        dup2(log, 2)
        close(devNull)
        close(log)
        _ = chdir("/")
        if let failure = Posix.writeFileAtomically(stateDir + "/shim.pid", "\(getpid())\n") {
            throw ShimFailure("cannot write \(stateDir)/shim.pid: \(Posix.errnoText(failure))")
        }
    }
}
