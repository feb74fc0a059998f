import Foundation
import PlatformModels
import Testing

@Suite struct UntrustedTextTests {
    let line = UntrustedText.Field.logMessage
    let block = UntrustedText.Field.stagingError

    @Test func ordinaryTextIsKeptExactly() {
        for text in ["hello world", "café crème é", "日本語のログ 中文 한국어", "emoji 👩‍👩‍👧‍👦 🇫🇷 ✔︎", "ümlaut ß © ° ½", ""] {
            #expect(UntrustedText.clean(text, as: line) == text)
            #expect(UntrustedText.clean(text, as: block) == text)
        }
        let nbsp = "a\u{A0}b"  // its first UTF-8 byte is that of the C1 controls
        #expect(UntrustedText.clean(nbsp, as: line) == nbsp)
    }

    @Test func csiSequencesAreRemoved() {
        #expect(UntrustedText.clean("\u{1B}[31mred\u{1B}[0m plain", as: line) == "red plain")
        #expect(UntrustedText.clean("\u{1B}[1;38;5;196mbold\u{1B}[m", as: line) == "bold")
        #expect(UntrustedText.clean("progress\u{1B}[2K\u{1B}[1G done", as: line) == "progress done")
        #expect(UntrustedText.clean("\u{1B}[?25lhidden cursor\u{1B}[?25h", as: line) == "hidden cursor")
        #expect(UntrustedText.clean("8-bit \u{9B}31mCSI\u{9B}0m", as: line) == "8-bit CSI")
        // Cut short: the sequence ends where it breaks, the rest is text.
        #expect(UntrustedText.clean("a\u{1B}[31", as: line) == "a")
        #expect(UntrustedText.clean("a\u{1B}[31é", as: line) == "aé")
        #expect(UntrustedText.clean("\u{1B}", as: line) == "")
    }

    @Test func oscAndOtherStringSequencesAreRemoved() {
        #expect(UntrustedText.clean("\u{1B}]0;evil title\u{07}after", as: line) == "after")
        #expect(UntrustedText.clean("\u{1B}]8;;https://evil.example\u{1B}\\link\u{1B}]8;;\u{1B}\\", as: line) == "link")
        #expect(UntrustedText.clean("\u{1B}P1$r0m\u{1B}\\dcs", as: line) == "dcs")
        #expect(UntrustedText.clean("\u{9D}0;c1 osc\u{9C}kept", as: line) == "kept")
        #expect(UntrustedText.clean("x\u{1B}_apc\u{1B}\\y\u{1B}^pm\u{07}z", as: line) == "xyz")
        // Unterminated: it ends at the line break, so the next line survives.
        #expect(UntrustedText.clean("a\u{1B}]0;never ends\nnext", as: block) == "a\nnext")
        #expect(UntrustedText.clean("a\u{1B}]0;never ends", as: line) == "a")
        // Other escapes: charset, save cursor, reset, keypad.
        #expect(UntrustedText.clean("\u{1B}(B\u{1B}7\u{1B}c\u{1B}=text\u{1B}8", as: line) == "text")
    }

    @Test func nulAndOtherControlsAreRemoved() {
        #expect(UntrustedText.clean("nul\0byte", as: line) == "nulbyte")
        #expect(UntrustedText.clean("\0\0\0", as: line) == "")
        #expect(UntrustedText.clean("bell\u{07} back\u{08}\u{08}space del\u{7F} c1\u{85}\u{8D}\u{9A}", as: block) == "bell backspace del c1\n")
        #expect(UntrustedText.clean("so\u{0E}si\u{0F}\u{1F}\u{01}", as: line) == "sosi")
    }

    @Test func lineBreaksAndTabsFollowTheField() {
        let text = "one\ttwo\nthree\r\nfour\rfive\u{0B}six\u{0C}seven\u{85}eight"
        #expect(UntrustedText.clean(text, as: block) == "one\ttwo\nthree\nfour\nfive\nsix\nseven\neight")
        #expect(UntrustedText.clean(text, as: line) == "one two three four five six seven eight")
        #expect(UntrustedText.clean("a\u{2028}b\u{2029}c", as: line) == "a b c")
        #expect(UntrustedText.clean("a\u{2028}b", as: block) == "a\u{2028}b", "not a control character")
        #expect(!UntrustedText.clean("x\ny\r\n", as: .reason).contains { $0.isNewline })
    }

    @Test func invalidUTF8IsReplaced() {
        let bytes: [UInt8] = Array("ok ".utf8) + [0xFF, 0xC3, 0x28, 0xED, 0xA0, 0x80, 0xF4, 0x90, 0x80, 0x80] + Array(" end".utf8)
        let text = UntrustedText.clean(bytes: bytes, as: line)
        #expect(text.hasPrefix("ok \u{FFFD}"))
        #expect(text.hasSuffix(" end"))
        #expect(!text.unicodeScalars.contains { $0.value == 0xFF || (0xD800...0xDFFF).contains($0.value) })
        #expect(text.contains("("), "the byte after a broken lead stays")
        #expect(UntrustedText.clean(bytes: Array("é 日本".utf8), as: line) == "é 日本")
        #expect(UntrustedText.clean(bytes: [0x1B, 0x5B, 0x33, 0x31, 0x6D, 0x00, 0xC3, 0xA9], as: line) == "é")
    }

    @Test func lengthIsCappedBetweenScalars() {
        let field = UntrustedText.Field(multiLine: false, maxBytes: 10)
        #expect(UntrustedText.clean("0123456789abc", as: field) == "0123456789")
        #expect(UntrustedText.clean("ééééééé", as: field) == "ééééé", "14 bytes cut to 10, never inside a character")
        #expect(UntrustedText.clean("日本語日本語", as: field) == "日本語", "9 bytes: a fourth would pass 10")
        #expect(UntrustedText.clean("\u{1B}[31m0123456789\u{1B}[0mXYZ", as: field) == "0123456789", "escapes do not count")
        #expect(UntrustedText.clean(bytes: Array(repeating: 0x41, count: 100) + [0xC3], as: field) == String(repeating: "A", count: 10))
    }

    @Test func aFourMiBLineIsCappedInBoundedTime() {
        let clock = ContinuousClock()
        let plain = String(repeating: "a", count: 4 << 20)
        let colours = String(repeating: "\u{1B}[31mé\u{1B}[0m\0", count: (4 << 20) / 12)
        let bytes = [UInt8](repeating: 0xFF, count: 4 << 20)
        var results: [String] = []
        let elapsed = clock.measure {
            results.append(UntrustedText.clean(plain, as: line))
            results.append(UntrustedText.clean(colours, as: .alertAnnotation))
            results.append(UntrustedText.clean(bytes: bytes, as: .reason))
        }
        #expect(results[0].utf8.count == line.maxBytes)
        #expect(results[1].utf8.count <= 8192 && results[1].allSatisfy { $0 == "é" } && !results[1].isEmpty)
        #expect(results[2].utf8.count <= 1024 && results[2].allSatisfy { $0 == "\u{FFFD}" })
        // The input read is bounded by the cap (16 x, at least 64 KiB), not by the 4 MiB given;
        // a debug build on a busy machine stays far below this.
        #expect(elapsed < .seconds(10), "took \(elapsed)")
    }

    @Test func alertDraftsAreSanitizedLabelsOnOneLine() {
        let draft = AlertDraft(labels: ["alertname": "StagingFailed", "app_name": "web\u{1B}[31m\nx"],
                               annotations: ["error": "line 1\n\u{1B}[31mline 2\u{1B}[0m\0", "summary": "ok"])
        let clean = draft.sanitized()
        #expect(clean.labels == ["alertname": "StagingFailed", "app_name": "web x"])
        #expect(clean.annotations == ["error": "line 1\nline 2", "summary": "ok"])
    }

    @Test func terminalEscapingShowsEveryControl() {
        #expect(UntrustedText.escapedForTerminal("plain é 日本 👍") == "plain é 日本 👍")
        #expect(UntrustedText.escapedForTerminal("\u{1B}[31mred") == "\\u{1B}[31mred")
        #expect(UntrustedText.escapedForTerminal("a\nb\tc\r\u{9B}\0") == "a\\u{0A}b\tc\\u{0D}\\u{9B}\\u{00}")
        #expect(UntrustedText.escapedForTerminal("a\nb", multiLine: true) == "a\nb")
        #expect(!UntrustedText.escapedForTerminal("\u{1B}]0;x\u{07}\u{7F}").unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
    }
}
