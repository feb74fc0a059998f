import ArgumentParser
import Foundation

/// CLI failures, each with its own exit code: usage errors 64, API errors 1, failed operations 2.
public enum CLIError: Error, CustomStringConvertible {
    case usage(String)
    case api(String, hint: String?)
    case operation(String)

    public var description: String {
        switch self {
        case .usage(let m), .operation(let m): return m
        case .api(let m, let hint): return hint.map { "\(m)\nhint: \($0)" } ?? m
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .usage: return 64
        case .api: return 1
        case .operation: return 2
        }
    }
}

/// Runs a command body, printing `error: ...` on one line and exiting with the error's code.
public func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        // What the command printed comes before its error, even when stdout is a file or a pipe.
        fflush(nil)
        throw reported(error)
    }
}

/// Prints `error` as one line (with a hint where one helps) and answers the exit to throw.
/// Errors quote what the platform answered (a build's error, an instance's crash reason, app
/// log lines), so they are made safe for the terminal here, once for every command.
private func reported(_ error: any Error) -> any Error {
    func write(_ text: String) { FileHandle.standardError.write(Data(Output.safe(text, multiLine: true).utf8)) }
    switch error {
    case let error as CLIError:
        write("error: \(error.description)\n")
        return ExitCode(error.exitCode)
    case let error as PlatformClientFailure:
        var hint: String?
        if error.status == 401 { hint = "log in again with `cf-like login`" }
        if error.status == 404 { hint = "check the name and your target (`cf-like target`)" }
        write("error: \(error.description)\(hint.map { "\nhint: \($0)" } ?? "")\n")
        return ExitCode(1)
    case is ExitCode, is ValidationError:
        return error
    default:
        write("error: \(error)\n")
        return ExitCode(2)
    }
}
