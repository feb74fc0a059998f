import Foundation

/// A program run to completion for a test, waited for on a thread of its own.
///
/// Tests run on Swift's cooperative pool, which has one thread per core (two on a small CI
/// machine). `Process.waitUntilExit()` and `readDataToEndOfFile()` block the thread they run on,
/// so two tests waiting for a slow child that way stall every other test of the run (timers,
/// event-loop answers and all), and a timing-sensitive test elsewhere fails. `run` suspends
/// instead; the blocking reads and the wait happen on a dedicated thread.
public struct ChildProcess: Sendable {
    public var status: Int32
    public var reason: Process.TerminationReason
    public var stdout: Data
    public var stderr: Data

    public var output: String { String(decoding: stdout, as: UTF8.self) }
    public var errors: String { String(decoding: stderr, as: UTF8.self) }

    /// Runs `executable` with an argument vector (never a shell string) and collects both streams.
    public static func run(
        _ executable: String, _ arguments: [String],
        environment: [String: String]? = nil, currentDirectory: String? = nil
    ) async throws -> ChildProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let box = UncheckedBox(process: process, out: out.fileHandleForReading, err: err.fileHandleForReading)
        return await withCheckedContinuation { continuation in
            let waiter = Thread {
                // Both pipes are drained at once so a child filling one cannot deadlock on it.
                let errors = LockedData()
                let reader = Thread {
                    errors.set(box.err.readDataToEndOfFile())
                    errors.done.signal()
                }
                reader.start()
                let data = box.out.readDataToEndOfFile()
                errors.done.wait()
                box.process.waitUntilExit()
                continuation.resume(returning: ChildProcess(
                    status: box.process.terminationStatus, reason: box.process.terminationReason,
                    stdout: data, stderr: errors.get()))
            }
            waiter.start()
        }
    }

    /// Like `run`, but throws with the program's error output unless it exits 0.
    @discardableResult
    public static func checked(
        _ executable: String, _ arguments: [String],
        environment: [String: String]? = nil, currentDirectory: String? = nil
    ) async throws -> ChildProcess {
        let result = try await run(executable, arguments, environment: environment, currentDirectory: currentDirectory)
        guard result.status == 0, result.reason == .exit else {
            throw ChildProcessFailure(
                command: ([executable] + arguments).joined(separator: " "), status: result.status,
                output: result.errors.isEmpty ? result.output : result.errors)
        }
        return result
    }
}

public struct ChildProcessFailure: Error, CustomStringConvertible {
    public var command: String
    public var status: Int32
    public var output: String
    public var description: String { "\(command) failed (status \(status)): \(output)" }
}

/// The process and its pipe ends, handed to the waiting thread (Foundation's types are not Sendable).
private struct UncheckedBox: @unchecked Sendable {
    let process: Process
    let out: FileHandle
    let err: FileHandle
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    let done = DispatchSemaphore(value: 0)
    func set(_ value: Data) { lock.withLock { data = value } }
    func get() -> Data { lock.withLock { data } }
}
