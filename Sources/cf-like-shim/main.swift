import CShimSupport
import Glibc

// cf-like-shim: creates and starts one container with runc, then stays behind as the
// container's reaper and log relay, so the agent that launched it may restart freely.
// See ShimOptions.usage for the command line and Containers' ContainerShim for the files.

// Whatever the caller blocked or ignored (SIGCHLD included) must not hold for the shim.
cflike_reset_signals()

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments == ["--help"] || arguments == ["-h"] {
    Posix.writeAll(1, ShimOptions.usage)
    exit(0)
}
let options: ShimOptions
do {
    options = try ShimOptions.parse(arguments)
} catch {
    Posix.writeAll(2, "cf-like-shim: \(error.message)\n\(ShimOptions.usage)")
    exit(64)
}

// Nothing the caller left open may reach runc or the container.
_ = cflike_close_from(3)
let readiness = Daemon.fork()

/// Tells the launcher how it went; the launcher prints it and exits.
func report(_ line: String) {
    Posix.writeAll(readiness, line + "\n")
    close(readiness)
}

func note(_ text: String) {
    Posix.writeAll(2, "\(Posix.unixNanoseconds()) cf-like-shim[\(getpid())] \(options.id): \(text)\n")
}

var started: Supervisor?
do {
    try Daemon.detach(stateDir: options.stateDir)
    let supervisor = try Supervisor(options: options)
    started = supervisor
    let pid = try supervisor.startContainer()
    note("container started, init pid \(pid) (\(supervisor.startTimings))")
    report("started \(pid)")
} catch {
    note("failed: \(error.reason)")
    // The app's log says why it never ran (runc's own words are above it, on stderr).
    started?.relay.system("cf-like: container failed to start: \(error.reason)")
    started?.relay.finish()
    report("failed \(error.reason)")
    exit(1)
}
guard let supervisor = started else { exit(1) }

let status = supervisor.supervise()
let verdict = Posix.describe(waitStatus: status)
var now = timespec()
clock_gettime(CLOCK_REALTIME, &now)
if let failure = Posix.writeFileAtomically(options.stateDir + "/exit", "\(verdict) \(now.tv_sec)\n", durable: true) {
    note("cannot write exit file: \(Posix.errnoText(failure))")
    exit(1)
}
if supervisor.relay.file.failedWrites > 0 {
    note("\(supervisor.relay.file.failedWrites) writes to the log failed; their lines are lost")
}
note("container \(verdict)")
exit(0)
