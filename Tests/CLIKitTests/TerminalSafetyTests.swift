import Foundation
import PlatformModels
import Testing

@testable import CLIKit

/// What apps and buildpacks printed reaches a terminal only escaped: the CLI prints no escape
/// sequence but its own colours, even for data stored before the platform cleaned it.
@Suite struct TerminalSafetyTests {
    static let hostile = "\u{1B}[2J\u{1B}]0;pwned\u{07}clear\u{9B}1mscreen\r\u{7F}\0"

    func controls(_ text: String) -> Int {
        text.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) }.count
    }

    @Test func tableCellsAreEscaped() {
        let table = Output.table(["name", "details"], [["web", Self.hostile], ["shop", "exited with status 1 é 日本"]])
        #expect(controls(table) == 0)
        #expect(table.contains("\\u{1B}[2J\\u{1B}]0;pwned\\u{07}clear\\u{9B}1mscreen\\u{0D}\\u{7F}\\u{00}"))
        #expect(table.contains("exited with status 1 é 日本"), "ordinary text as it is")
        let lines = table.split(separator: "\n")
        #expect(lines.count == 3, "a cell never breaks the table's lines")
    }

    @Test func logLinesShowOnlyTheCLIsOwnColours() {
        let line = LogLine(appGUID: "a", timestamp: 1_700_000_000_000_000_000, sourceType: "APP/PROC/WEB\u{1B}[8m", sourceInstance: "0",
                           messageType: .out, message: Self.hostile + " done")
        let plain = LogsCommand.format(line, colour: false)
        #expect(controls(plain) == 0)
        #expect(plain.hasSuffix("\\u{1B}[2J\\u{1B}]0;pwned\\u{07}clear\\u{9B}1mscreen\\u{0D}\\u{7F}\\u{00} done"))
        let coloured = LogsCommand.format(line, colour: true)
        #expect(coloured.unicodeScalars.filter { $0 == "\u{1B}" }.count == 2, "the source's colour and its reset")
        #expect(coloured.contains("[APP/PROC/WEB\\u{1B}[8m/0]"))
    }

    @Test func alertDetailsKeepLinesAndEscapeTheRest() throws {
        let alert = try JSONDecoder().decode(AlertResource.self, from: Data("""
            {"id":1,"name":"StagingFailed","state":"active","severity":"warning","app_guid":"9f1c",
             "labels":{"alertname":"StagingFailed","app_name":"web\\u001b[31m"},
             "annotations":{"error":"line one\\u001b[0m\\nline two\\u0007"},
             "starts_at":"t0","ends_at":null,"fingerprint":"f"}
            """.utf8))
        let text = AlertRows.details(alert)
        #expect(controls(text) == 0)
        #expect(text.contains("      line one\\u{1B}[0m\n      line two\\u{07}\n"))
        #expect(text.contains("app_name:    web\\u{1B}[31m"))
    }
}
