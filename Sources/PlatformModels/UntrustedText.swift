/// Text that comes from apps and buildpacks (log lines, staging output, exit reasons, alert
/// texts built from them), made safe where it enters the platform.
///
/// One buildpack's colour codes once made the controller refuse every alert batch for as long
/// as its alert was active, so the rule lives here, once, and every component applies it where
/// such text enters (agent, stager, health manager, controller on ingest) rather than refusing
/// it later. ``clean(_:as:)``:
///
/// - removes ANSI/ECMA-48 escape sequences: CSI (`ESC [` parameters, intermediates, final
///   byte), OSC, DCS, SOS, PM and APC strings (ended by BEL, ST, CAN, SUB or a line break;
///   unterminated ones swallow the rest, as a terminal would), other `ESC` sequences, and
///   their 8-bit C1 forms;
/// - removes every other control character (C0, DEL, C1), NUL included;
/// - keeps line breaks (LF, CR, CRLF, VT, FF, NEL, each as one `\n`) and tabs in a multi-line
///   field; in a single-line field each of them, and U+2028/U+2029, becomes one space;
/// - replaces invalid UTF-8 with U+FFFD (``clean(bytes:as:)``; a `String` is always valid);
/// - caps the UTF-8 length at the field's `maxBytes`, cutting between scalars, and reads at
///   most 16 times that (at least 64 KiB) of the input, so time is bounded by the cap, not by
///   what an app printed.
///
/// Everything else (é, emoji, CJK, ...) is kept exactly.
public enum UntrustedText {
    /// How a field holds text: one line or several, and at most how many bytes.
    public struct Field: Sendable, Equatable {
        /// Line breaks and tabs are kept (as `\n` and `\t`); otherwise each becomes a space.
        public var multiLine: Bool
        /// Longest result, in bytes of UTF-8.
        public var maxBytes: Int

        public init(multiLine: Bool, maxBytes: Int) {
            self.multiLine = multiLine
            self.maxBytes = max(0, maxBytes)
        }

        /// An app log line (`LogLine.message`): one line (the shim splits output at newlines), 64 KiB.
        public static let logMessage = Field(multiLine: false, maxBytes: 64 * 1024)
        /// An instance event's reason, a report's `details`, an exit description: one line, 1 KiB.
        public static let reason = Field(multiLine: false, maxBytes: 1024)
        /// A staging failure's message (the buildpack's last lines): multi-line, 4 KiB.
        public static let stagingError = Field(multiLine: true, maxBytes: 4096)
        /// An alert label value (it identifies the alert): one line, 1 KiB.
        public static let alertLabel = Field(multiLine: false, maxBytes: 1024)
        /// An alert annotation value: multi-line, 8 KiB.
        public static let alertAnnotation = Field(multiLine: true, maxBytes: 8192)

        /// Input bytes read at most: enough for text heavy with colour codes, bounded by the cap.
        var scanLimit: Int { maxBytes > Int.max / 16 ? Int.max : Swift.max(maxBytes * 16, 64 * 1024) }
    }

    /// `text` made safe for `field` (see the type's rules).
    public static func clean(_ text: String, as field: Field) -> String {
        if isClean(text, field) { return text }
        var text = text
        return text.withUTF8 { clean(valid: $0, field) }
    }

    /// Bytes of unknown encoding as safe text for `field`: invalid UTF-8 becomes U+FFFD.
    public static func clean(bytes: some Collection<UInt8>, as field: Field) -> String {
        var prefix = Array(bytes.prefix(field.scanLimit))
        if prefix.count < bytes.count { dropIncompleteScalar(&prefix) }
        return clean(String(decoding: prefix, as: UTF8.self), as: field)
    }

    /// `text` for a terminal: every control character shown as `\u{XX}` (so no escape
    /// sequence reaches the terminal); tabs kept, and newlines when `multiLine`.
    public static func escapedForTerminal(_ text: String, multiLine: Bool = false) -> String {
        func plain(_ s: Unicode.Scalar) -> Bool { s == "\t" || (multiLine && s == "\n") || !isControl(s.value) }
        guard !text.unicodeScalars.allSatisfy(plain) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if plain(scalar) {
                out.append(scalar)
            } else {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out.append(contentsOf: "\\u{\(hex.count < 2 ? "0" + hex : hex)}".unicodeScalars)
            }
        }
        return String(out)
    }

    // MARK: Rules

    static func isControl(_ value: UInt32) -> Bool { value < 0x20 || (0x7F...0x9F).contains(value) }

    /// The common case, answered without copying: short, and no byte that could need work
    /// (controls, the lead byte of C1 controls, and of U+2028/U+2029 in a single-line field).
    static func isClean(_ text: String, _ field: Field) -> Bool {
        guard text.utf8.count <= field.maxBytes else { return false }
        return !text.utf8.contains { b in
            (b < 0x20 && !(field.multiLine && (b == 0x09 || b == 0x0A))) || b == 0x7F || b == 0xC2 || (!field.multiLine && b == 0xE2)
        }
    }

    /// Cuts a scalar the prefix split, so the cut does not read as invalid UTF-8.
    static func dropIncompleteScalar(_ bytes: inout [UInt8]) {
        var lead = bytes.count - 1
        while lead >= 0, bytes.count - lead < 4, bytes[lead] & 0xC0 == 0x80 { lead -= 1 }
        guard lead >= 0 else { return }
        if bytes.count - lead < scalarLength(bytes[lead]) { bytes.removeSubrange(lead...) }
    }

    static func scalarLength(_ lead: UInt8) -> Int {
        switch lead {
        case ..<0xC0: return 1
        case ..<0xE0: return 2
        case ..<0xF0: return 3
        default: return 4
        }
    }

    /// The rules over valid UTF-8.
    static func clean(valid input: UnsafeBufferPointer<UInt8>, _ field: Field) -> String {
        var scanner = Scanner(input: input, end: Swift.min(input.count, field.scanLimit), field: field)
        scanner.run()
        return String(decoding: scanner.out, as: UTF8.self)
    }

    /// One pass over the input: `i` only moves forward, so time is linear in the bytes read.
    struct Scanner {
        let input: UnsafeBufferPointer<UInt8>
        let end: Int
        let field: Field
        var out: [UInt8] = []
        var i = 0

        init(input: UnsafeBufferPointer<UInt8>, end: Int, field: Field) {
            self.input = input
            self.end = end
            self.field = field
            out.reserveCapacity(Swift.min(end, field.maxBytes))
        }

        func at(_ k: Int) -> UInt8? { k < end ? input[k] : nil }

        mutating func run() {
            while i < end {
                let b = input[i]
                switch b {
                case 0x1B:
                    i = skipEscape(from: i + 1)
                case 0x0A, 0x0B, 0x0C:
                    guard lineBreak(width: 1) else { return }
                case 0x0D:
                    guard lineBreak(width: at(i + 1) == 0x0A ? 2 : 1) else { return }
                case 0x09:
                    guard emit(field.multiLine ? 0x09 : 0x20) else { return }
                    i += 1
                case 0x00..<0x20, 0x7F:
                    i += 1
                case 0xC2 where (0x80...0x9F).contains(at(i + 1) ?? 0):
                    guard c1(input[i + 1]) else { return }
                case 0xE2 where !field.multiLine && at(i + 1) == 0x80 && (at(i + 2) == 0xA8 || at(i + 2) == 0xA9):
                    guard lineBreak(width: 3) else { return }
                default:
                    guard copyScalar() else { return }
                }
            }
        }

        /// Appends one byte; false once the cap is reached.
        mutating func emit(_ byte: UInt8) -> Bool {
            guard out.count < field.maxBytes else { return false }
            out.append(byte)
            return true
        }

        mutating func lineBreak(width: Int) -> Bool {
            guard emit(field.multiLine ? 0x0A : 0x20) else { return false }
            i += width
            return true
        }

        mutating func copyScalar() -> Bool {
            let length = UntrustedText.scalarLength(input[i])
            guard i + length <= end, out.count + length <= field.maxBytes else { return false }
            out.append(contentsOf: input[i..<(i + length)])
            i += length
            return true
        }

        /// An 8-bit control (U+0080...U+009F, the byte after 0xC2 is `code`).
        mutating func c1(_ code: UInt8) -> Bool {
            switch code {
            case 0x9B: i = skipCSI(from: i + 2)
            case 0x90, 0x98, 0x9D, 0x9E, 0x9F: i = skipString(from: i + 2)
            case 0x85: return lineBreak(width: 2)
            default: i += 2
            }
            return true
        }

        /// After an ESC at `j - 1`: the index after its sequence.
        func skipEscape(from j: Int) -> Int {
            guard let c = at(j) else { return j }
            switch c {
            case UInt8(ascii: "["): return skipCSI(from: j + 1)
            case UInt8(ascii: "]"), UInt8(ascii: "P"), UInt8(ascii: "X"), UInt8(ascii: "^"), UInt8(ascii: "_"):
                return skipString(from: j + 1)
            case 0x20...0x2F:
                var k = j
                while let b = at(k), (0x20...0x2F).contains(b) { k += 1 }
                if let b = at(k), (0x30...0x7E).contains(b) { return k + 1 }
                return k
            case 0x30...0x7E:
                return j + 1
            default:
                return j  // a lone ESC goes; what follows is read as text
            }
        }

        /// Parameters, intermediates, final byte; a sequence cut short by anything else ends
        /// there, and that byte is read as text.
        func skipCSI(from j: Int) -> Int {
            var k = j
            while let b = at(k), (0x30...0x3F).contains(b) { k += 1 }
            while let b = at(k), (0x20...0x2F).contains(b) { k += 1 }
            if let b = at(k), (0x40...0x7E).contains(b) { return k + 1 }
            return k
        }

        /// OSC/DCS/SOS/PM/APC: up to BEL, ST (`ESC \` or U+009C), CAN or SUB; a line break or
        /// another ESC also ends it (and is read next), so one bad sequence costs one line.
        func skipString(from j: Int) -> Int {
            var k = j
            while let b = at(k) {
                switch b {
                case 0x07, 0x18, 0x1A: return k + 1
                case 0x1B: return at(k + 1) == UInt8(ascii: "\\") ? k + 2 : k
                case 0x0A, 0x0D: return k
                case 0xC2 where at(k + 1) == 0x9C: return k + 2
                default: k += 1
                }
            }
            return k
        }
    }
}

extension AlertDraft {
    /// The draft with every label value one safe line (``UntrustedText/Field/alertLabel``) and
    /// every annotation value safe text (``UntrustedText/Field/alertAnnotation``); keys as they are.
    public func sanitized() -> AlertDraft {
        AlertDraft(labels: labels.mapValues { UntrustedText.clean($0, as: .alertLabel) },
                   annotations: annotations.mapValues { UntrustedText.clean($0, as: .alertAnnotation) })
    }
}
