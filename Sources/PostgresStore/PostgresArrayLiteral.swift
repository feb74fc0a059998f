/// Reads and writes one-dimensional PostgreSQL array literals (`{a,"b c",NULL}`).
enum PostgresArrayLiteral {
    /// Quotes every element so commas, quotes, backslashes, braces, blanks and the word NULL survive.
    static func format(_ elements: [String?]) -> String {
        var out = "{"
        for (index, element) in elements.enumerated() {
            if index > 0 { out += "," }
            guard let element else {
                out += "NULL"
                continue
            }
            out += "\""
            for character in element.unicodeScalars {
                if character == "\"" || character == "\\" { out += "\\" }
                out.unicodeScalars.append(character)
            }
            out += "\""
        }
        return out + "}"
    }

    /// Parses the server's output for a one-dimensional array; `nil` elements are SQL NULLs.
    static func parse(_ text: String) throws -> [String?] {
        func fail(_ why: String) -> PostgresError { PostgresError.decoding([String].self, why) }
        var bytes = Array(text.utf8)[...]
        // Arrays with a lower bound other than 1 are printed with a "[2:3]=" prefix.
        if bytes.first == UInt8(ascii: "["), let equals = bytes.firstIndex(of: UInt8(ascii: "=")) {
            bytes = bytes[(equals + 1)...]
        }
        guard bytes.first == UInt8(ascii: "{"), bytes.last == UInt8(ascii: "}") else { throw fail("not an array literal") }
        let body = Array(bytes.dropFirst().dropLast())
        if body.allSatisfy(isBlank) { return [] }

        var elements: [String?] = []
        var index = 0
        while true {
            while index < body.count, isBlank(body[index]) { index += 1 }
            guard index < body.count else { throw fail("missing element") }
            var element: [UInt8] = []
            if body[index] == UInt8(ascii: "{") {
                throw fail("multi-dimensional arrays are not supported")
            } else if body[index] == UInt8(ascii: "\"") {
                index += 1
                var closed = false
                while index < body.count {
                    let byte = body[index]
                    index += 1
                    if byte == UInt8(ascii: "\\") {
                        guard index < body.count else { break }
                        element.append(body[index])
                        index += 1
                    } else if byte == UInt8(ascii: "\"") {
                        closed = true
                        break
                    } else {
                        element.append(byte)
                    }
                }
                guard closed else { throw fail("unterminated quoted element") }
                elements.append(String(decoding: element, as: UTF8.self))
                while index < body.count, isBlank(body[index]) { index += 1 }
            } else {
                while index < body.count, body[index] != UInt8(ascii: ",") {
                    if body[index] == UInt8(ascii: "\\"), index + 1 < body.count { index += 1 }
                    element.append(body[index])
                    index += 1
                }
                while let last = element.last, isBlank(last) { element.removeLast() }
                let string = String(decoding: element, as: UTF8.self)
                elements.append(string.uppercased() == "NULL" ? nil : string)
            }
            if index == body.count { return elements }
            guard body[index] == UInt8(ascii: ",") else { throw fail("expected a comma") }
            index += 1
        }
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }
}
