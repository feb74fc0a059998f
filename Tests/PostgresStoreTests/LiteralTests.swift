import Foundation
@testable import PostgresStore
@testable import TestSupport
import Testing

/// Pure parsing and formatting, no server needed.
@Suite struct Literals {
    @Test func arrayLiteralQuotesEverything() {
        #expect(PostgresArrayLiteral.format([]) == "{}")
        #expect(PostgresArrayLiteral.format(["a", nil, "b\"c", "d\\e"]) == #"{"a",NULL,"b\"c","d\\e"}"#)
    }

    @Test func arrayLiteralParsesServerOutput() throws {
        #expect(try PostgresArrayLiteral.parse("{}") == [])
        #expect(try PostgresArrayLiteral.parse(#"{a,"b c",NULL,"NULL","x\"y","\\",""}"#) == ["a", "b c", nil, "NULL", "x\"y", "\\", ""])
        #expect(try PostgresArrayLiteral.parse("[0:1]={x,y}") == ["x", "y"])
        #expect(throws: PostgresError.self) { try PostgresArrayLiteral.parse("{{a},{b}}") }
        #expect(throws: PostgresError.self) { try PostgresArrayLiteral.parse(#"{"open}"#) }
        #expect(throws: PostgresError.self) { try PostgresArrayLiteral.parse("nope") }
    }

    @Test func timestampsParseEveryOffsetForm() throws {
        let expected = Date(timeIntervalSince1970: 1_704_067_200.25)
        for text in [
            "2024-01-01 00:00:00.25+00", "2024-01-01 00:00:00.250000+00:00", "2024-01-01T00:00:00.25Z",
            "2024-01-01 05:30:00.25+05:30", "2023-12-31 16:00:00.25-08", "2024-01-01 00:00:00.25",
        ] {
            #expect(try PostgresTimestamp.parse(text) == expected, "\(text)")
        }
        #expect(try PostgresTimestamp.parse("1969-12-31 23:59:59+00") == Date(timeIntervalSince1970: -1))
        #expect(try PostgresTimestamp.parse("infinity") == .distantFuture)
        #expect(throws: PostgresError.self) { try PostgresTimestamp.parse("2024-01-01 00:00:00+00 BC") }
        #expect(throws: PostgresError.self) { try PostgresTimestamp.parse("yesterday") }
    }

    @Test func timestampsFormatWithMicroseconds() {
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 1_714_564_800.123456)) == "2024-05-01T12:00:00.123456Z")
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500000Z")
    }

    @Test func bindableTextForms() {
        #expect(true.postgresText == "t")
        #expect(Double.nan.postgresText == "NaN")
        #expect((-Double.infinity).postgresText == "-Infinity")
        #expect(Int?.none.postgresText == nil)
        #expect(Data([0xde, 0xad]).postgresText == "\\xdead")
        #expect(UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F")?.postgresText == "e621e1f8-c36c-495a-93fc-0c247a3e6e5f")
    }

    @Test func scratchDatabaseURLKeepsEverythingButTheDatabase() {
        #expect(ScratchDatabase.replacingDatabase(in: "postgresql://u:p@127.0.0.1:5432/postgres", with: "x")
            == "postgresql://u:p@127.0.0.1:5432/x")
        #expect(ScratchDatabase.replacingDatabase(in: "postgresql://u@127.0.0.1:5432/postgres?host=/tmp/sock&sslmode=disable", with: "x")
            == "postgresql://u@127.0.0.1:5432/x?host=/tmp/sock&sslmode=disable")
        #expect(ScratchDatabase.replacingDatabase(in: "postgresql://u@?host=/tmp/sock", with: "x") == "postgresql://u@/x?host=/tmp/sock")
        #expect(ScratchDatabase.replacingDatabase(in: "postgresql://localhost", with: "x") == "postgresql://localhost/x")
        #expect(ScratchDatabase.replacingDatabase(in: "host=/tmp dbname=postgres", with: "x") == "host=/tmp dbname=postgres dbname=x")
    }
}
