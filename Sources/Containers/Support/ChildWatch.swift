#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// One child's deadline and the caller waiting for it.
///
/// The child's exit, or the last step of its deadline: whichever comes first answers the
/// caller, exactly once. At the deadline (or when the caller is cancelled) the child's process
/// group gets SIGTERM, after the kill grace SIGKILL, and after the reap grace the caller is
/// answered `.abandoned` if the exit still was not observed. The timers run on Dispatch rather
/// than the cooperative pool, so the signals go out on time even when every pool thread is busy.
final class ChildWatch: Sendable {
    /// How a watched child ended, as far as the caller learns.
    enum Outcome: Sendable {
        /// It exited: the status, 128 + signal for a signalled child.
        case exited(Int32)
        /// It could not be started, or its end could not be learned.
        case failed(ContainerError)
        /// The deadline's last step passed without its exit being observed.
        case abandoned
    }

    private struct State {
        var group: pid_t?
        var expired = false
        var killed = false
        var answer: Outcome?
        var waiter: CheckedContinuation<Outcome, Never>?
        var deadline: DispatchWorkItem?
    }

    private let state = Mutex(State())
    private let killGrace: Duration
    private let reapGrace: Duration

    init(killGrace: Duration, reapGrace: Duration) {
        self.killGrace = killGrace
        self.reapGrace = reapGrace
    }

    /// Whether the deadline passed, or the caller gave up, before the child's exit was seen.
    var expired: Bool { state.withLock { $0.expired } }

    /// The child's process group (its own pid), once it runs.
    var group: pid_t? { state.withLock { $0.group } }

    /// Runs `work` (which starts the child and waits for it) and answers with its outcome, or
    /// with `.abandoned` once the deadline's last step passed. A cancelled caller expires the
    /// deadline at once.
    func run(timeout: Duration, _ work: @escaping @Sendable () async -> Outcome) async -> Outcome {
        // The work runs in a task of its own, not a child task: when the exit is never observed
        // that task keeps waiting, and a task group would make the caller wait with it.
        Task { self.answer(await work()) }
        state.withLock { state in
            let deadline = DispatchWorkItem { [self] in expire() }
            state.deadline = deadline
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(CommandRunner.nanoseconds(timeout)), execute: deadline)
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Outcome? in
                    if let answer = state.answer { return answer }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            expire()
        }
    }

    /// The child runs, leading process group `pid`. One started after its deadline passed is
    /// signalled at once, as the deadline would have.
    func started(group pid: pid_t) {
        let late = state.withLock { state -> Int32? in
            state.group = pid
            return state.killed ? SIGKILL : state.expired ? SIGTERM : nil
        }
        if let late { kill(-pid, late) }
    }

    /// The deadline passed or the caller gave up: SIGTERM to the group now, SIGKILL later.
    func expire() {
        let (fire, group) = state.withLock { state -> (Bool, pid_t?) in
            guard state.answer == nil, !state.expired else { return (false, nil) }
            state.expired = true
            return (true, state.group)
        }
        guard fire else { return }
        if let group { kill(-group, SIGTERM) }
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(CommandRunner.nanoseconds(killGrace))) { [self] in
            killGroup()
        }
    }

    private func killGroup() {
        let group = state.withLock { state -> pid_t? in
            state.killed = true
            return state.group
        }
        // Sent even when the leader has exited: a descendant in its group may not have. While
        // any member lives no new process can take the group's id, and once none does the pid
        // allocator does not come back to that id within seconds.
        if let group { kill(-group, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(CommandRunner.nanoseconds(reapGrace))) { [self] in
            answer(.abandoned)
        }
    }

    /// Answers the caller, unless it was answered already.
    private func answer(_ outcome: Outcome) {
        let waiter = state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            guard state.answer == nil else { return nil }
            state.answer = outcome
            // An answer before the deadline: the timer has nothing left to do.
            state.deadline?.cancel()
            state.deadline = nil
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: outcome)
    }
}
