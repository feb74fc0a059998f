import PlatformModels
import Testing

@testable import Stager

/// What the stager ships of buildpack output and failures is clean (UntrustedText).
struct StagingTextTests {
    @Test func stagerWordsBecomeCleanSingleLines() {
        let text = "Start command: \u{1B}[32m./run\u{1B}[0m\nentry '\u{1B}]0;x\u{07}evil\0'\r\n\n   \n"
        let lines = LogLine.staging(app: "a", text, stream: .err, at: 7)
        #expect(lines.map(\.message) == ["Start command: ./run", "entry 'evil'"])
        #expect(lines.allSatisfy { $0.sourceType == StagingProtocol.logSourceType && $0.messageType == .err && $0.timestamp == 7 })
    }

    @Test func failureMessagesAreCleanedAndCapped() {
        let message = "App staging failed: \u{1B}[31mboom\u{1B}[0m\0\nlast line\r\n" + String(repeating: "é", count: 10_000)
        let cleaned = StagingResult.failed(.buildpackCompileFailed, message, duration: 1).cleaned()
        let text = cleaned.failure?.message ?? ""
        #expect(text.hasPrefix("App staging failed: boom\nlast line\néé"))
        #expect(text.utf8.count <= UntrustedText.Field.stagingError.maxBytes)
        #expect(cleaned.failure?.code == .buildpackCompileFailed && cleaned.durationSeconds == 1)
        let staged = StagingResult.staged(StagingResult.Success(processTypes: [:], buildpacks: [], stack: "s", startCommand: nil),
                                          duration: 2)
        #expect(staged.cleaned() == staged)
    }
}
