import Foundation

/// Formats and parses timestamps without `DateFormatter`, whose locale and fixed fraction width
/// do not fit PostgreSQL's variable-precision output.
enum PostgresTimestamp {
    /// ISO 8601 in UTC with microseconds, e.g. `2024-05-01T12:00:00.123456Z`.
    static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let (secondsOfEpoch, fraction) = floorDivMod(micros, 1_000_000)
        let (days, secondOfDay) = floorDivMod(secondsOfEpoch, 86_400)
        let (year, month, day) = civil(fromDays: days)
        let hour = secondOfDay / 3600, minute = secondOfDay / 60 % 60, second = secondOfDay % 60
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))."
            + "\(pad(fraction, 6))Z"
    }

    /// Parses ISO DateStyle output: `YYYY-MM-DD[ |T]HH:MM:SS[.ffffff][Z|±HH[:MM[:SS]]]`, a bare date, or ±infinity.
    static func parse(_ text: String) throws -> Date {
        switch text {
        case "infinity": return .distantFuture
        case "-infinity": return .distantPast
        default: break
        }
        var scanner = Scanner(Array(text.utf8))
        func fail(_ why: String) -> PostgresError { PostgresError.decoding(Date.self, why) }

        guard let year = scanner.number(minDigits: 4, maxDigits: 7), scanner.consume("-"),
              let month = scanner.number(minDigits: 2, maxDigits: 2), scanner.consume("-"),
              let day = scanner.number(minDigits: 2, maxDigits: 2), (1...12).contains(month), (1...31).contains(day)
        else { throw fail("not an ISO date") }
        var seconds = daysFromCivil(year: year, month: month, day: day) * 86_400
        var fraction = 0.0

        if scanner.consume(" ") || scanner.consume("T") {
            guard let hour = scanner.number(minDigits: 2, maxDigits: 2), scanner.consume(":"),
                  let minute = scanner.number(minDigits: 2, maxDigits: 2), scanner.consume(":"),
                  let second = scanner.number(minDigits: 2, maxDigits: 2), hour <= 24, minute < 60, second <= 60
            else { throw fail("not an ISO time") }
            seconds += Int64(hour * 3600 + minute * 60 + second)
            if scanner.consume(".") {
                var scale = 0.1
                var digits = 0
                while let digit = scanner.digit() {
                    fraction += Double(digit) * scale
                    scale /= 10
                    digits += 1
                }
                guard digits > 0 else { throw fail("empty fraction") }
            }
            if scanner.consume("Z") {
                // UTC
            } else if let sign = scanner.peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                scanner.advance()
                guard let offsetHours = scanner.number(minDigits: 2, maxDigits: 2) else { throw fail("bad UTC offset") }
                var offset = offsetHours * 3600
                if scanner.consume(":") || scanner.peekIsDigit() {
                    guard let offsetMinutes = scanner.number(minDigits: 2, maxDigits: 2) else { throw fail("bad UTC offset") }
                    offset += offsetMinutes * 60
                    if scanner.consume(":") {
                        guard let offsetSeconds = scanner.number(minDigits: 2, maxDigits: 2) else { throw fail("bad UTC offset") }
                        offset += offsetSeconds
                    }
                }
                // Local time = UTC + offset, so UTC = local - offset.
                seconds -= Int64(sign == UInt8(ascii: "+") ? offset : -offset)
            }
        }
        guard scanner.isAtEnd else { throw fail("unexpected trailing text (BC dates are not supported)") }
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var isAtEnd: Bool { index == bytes.count }
        func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }
        func peekIsDigit() -> Bool { peek().map { $0 >= 48 && $0 <= 57 } ?? false }
        mutating func advance() { index += 1 }
        mutating func consume(_ character: Unicode.Scalar) -> Bool {
            guard peek() == UInt8(ascii: character) else { return false }
            index += 1
            return true
        }
        mutating func digit() -> Int? {
            guard peekIsDigit(), let byte = peek() else { return nil }
            index += 1
            return Int(byte - 48)
        }
        mutating func number(minDigits: Int, maxDigits: Int) -> Int? {
            var value = 0
            var count = 0
            while count < maxDigits, let digit = digit() {
                value = value * 10 + digit
                count += 1
            }
            return count >= minDigits ? value : nil
        }
    }

    private static func pad(_ value: some BinaryInteger, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    private static func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    // Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian calendar).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
