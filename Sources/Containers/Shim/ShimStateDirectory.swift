/// The files `cf-like-shim` keeps in a container's state directory.
///
/// The shim writes them; the agent reads them, also after it restarted, so they are the
/// whole contract between the two besides the command line.
public enum ShimStateDirectory {
    /// The container's output: lines `<unix-ns> <O|E|S> <text>` (stdout, stderr, the shim's own).
    public static let log = "log"
    /// The previous `log`, once it grew past half the log budget.
    public static let rotatedLog = "log.1"
    /// One line, written once the container's init was reaped: `exited <code> <unix-s>` or
    /// `signaled <signal> <unix-s>`.
    public static let exit = "exit"
    /// The container init's host pid (runc's `--pid-file`).
    public static let containerPID = "pid"
    /// The shim daemon's pid.
    public static let shimPID = "shim.pid"
    /// The shim's own diagnostics (and what `runc delete` said on a failed start).
    public static let shimLog = "shim.log"
    /// runc's JSON log.
    public static let runcLog = "runc.log"

    /// `directory/name`.
    public static func path(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
