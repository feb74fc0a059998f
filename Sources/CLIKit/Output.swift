import Foundation
import PlatformModels

/// Human tables (aligned; bold headers only on a terminal) and `--json` for scripts.
///
/// Text from the platform can carry what apps and buildpacks printed: everything human output
/// shows of it goes through ``safe(_:multiLine:)`` (tables do it for every cell), so a
/// terminal never receives an escape sequence an app wrote, even from data stored before the
/// platform cleaned such text on ingest. `--json` stays exact (JSON escapes C0 controls).
public enum Output {
    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

    /// `text` safe for a terminal: every control character shown as `\u{XX}`; tabs kept, and
    /// newlines when `multiLine`.
    public static func safe(_ text: String, multiLine: Bool = false) -> String {
        UntrustedText.escapedForTerminal(text, multiLine: multiLine)
    }

    /// Renders rows under headers with columns aligned; every cell made ``safe(_:multiLine:)``.
    public static func table(_ headers: [String], _ rows: [[String]]) -> String {
        let headers = headers.map { safe($0) }
        let rows = rows.map { $0.map { safe($0) } }
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "   ")
        }
        var out = isTerminal ? "\u{1B}[1m\(line(headers))\u{1B}[0m\n" : line(headers) + "\n"
        for row in rows { out += line(row) + "\n" }
        return out
    }

    public static func printTable(_ headers: [String], _ rows: [[String]]) {
        print(table(headers, rows), terminator: "")
    }

    /// Pretty JSON of any encodable value.
    public static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Reads a line from the terminal without echo (for passwords).
    public static func readSecret(_ prompt: String) -> String? {
        guard isatty(STDIN_FILENO) == 1 else { return nil }
        FileHandle.standardError.write(Data(prompt.utf8))
        var old = termios()
        tcgetattr(STDIN_FILENO, &old)
        var noEcho = old
        noEcho.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &noEcho)
        defer {
            tcsetattr(STDIN_FILENO, TCSANOW, &old)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine()
    }

    /// Reads a line with echo, only on a terminal.
    public static func readLineIfTerminal(_ prompt: String) -> String? {
        guard isatty(STDIN_FILENO) == 1 else { return nil }
        FileHandle.standardError.write(Data(prompt.utf8))
        return readLine()
    }
}
