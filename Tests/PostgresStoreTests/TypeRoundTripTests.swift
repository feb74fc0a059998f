import Foundation
import PostgresStore
import Testing

extension PostgresIntegration {
    @Suite struct TypeRoundTrip {
        struct Payload: Codable, Equatable {
            var name: String
            var tags: [String]
        }

        @Test func everyBindableTypeRoundTrips() async throws {
            try await withScratchPool { _, pool in
                try await pool.query("""
                    CREATE TABLE samples (
                        id int PRIMARY KEY, s text, i bigint, i32 int, i64 bigint, b bool, d float8,
                        u uuid, ts timestamptz, arr text[], j jsonb, bin bytea, ints int[]
                    )
                    """)
                let uuid = UUID()
                let date = Date(timeIntervalSince1970: 1_714_564_800.123456)
                let array = ["plain", "a,b", "quote\"d", "back\\slash", "{braces}", "", "NULL", " spaced ", "ünïcødé ✓"]
                let json = try PostgresJSON(encoding: Payload(name: "x", tags: ["a", "b"]))
                let bytes = Data([0, 1, 0x7f, 0x80, 0xff])
                let inserted = try await pool.query(
                    "INSERT INTO samples VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    [1, "héllo 'world'", Int.max, Int32.min, Int64.min, true, 3.25, uuid, date, array, json, bytes, [1, 2, 3]]
                )
                #expect(inserted.affectedRows == 1)

                let row = try #require(try await pool.query("SELECT * FROM samples WHERE id = $1", [1]).first)
                #expect(try row.decode("s", as: String.self) == "héllo 'world'")
                #expect(try row.decode("i", as: Int.self) == Int.max)
                #expect(try row.decode("i32", as: Int32.self) == Int32.min)
                #expect(try row.decode("i64", as: Int64.self) == Int64.min)
                #expect(try row.decode("b", as: Bool.self) == true)
                #expect(try row.decode("d", as: Double.self) == 3.25)
                #expect(try row.decode("u", as: UUID.self) == uuid)
                #expect(row["u"] == uuid.uuidString.lowercased())
                let decodedDate = try row.decode("ts", as: Date.self)
                #expect(microseconds(decodedDate) == microseconds(date))
                #expect(row["ts"] == "2024-05-01 12:00:00.123456+00")
                #expect(try row.decode("arr", as: [String].self) == array)
                #expect(try row.decode("j", as: PostgresJSON.self).decode(as: Payload.self) == Payload(name: "x", tags: ["a", "b"]))
                #expect(try row.decode("bin", as: Data.self) == bytes)
                #expect(try row.decode("ints", as: [Int].self) == [1, 2, 3])

                // The server must see the array elements themselves, not our quoting.
                let check = try await pool.query(
                    "SELECT array_length(arr, 1) AS n, arr[7] IS NULL AS seventh_null, arr[7] AS seventh, j->>'name' AS name FROM samples"
                )
                #expect(try check[0].decode("n", as: Int.self) == array.count)
                #expect(try check[0].decode("seventh_null", as: Bool.self) == false)
                #expect(try check[0].decode("seventh", as: String.self) == "NULL")
                #expect(try check[0].decode("name", as: String.self) == "x")
            }
        }

        @Test func nullsRoundTripAsOptionals() async throws {
            try await withScratchPool { _, pool in
                try await pool.query("CREATE TABLE samples (id int, s text, i bigint, b bool, u uuid, ts timestamptz, arr text[], j jsonb)")
                let noString: String? = nil
                let noDate: Date? = nil
                try await pool.query(
                    "INSERT INTO samples VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    [1, noString, Int?.none, Bool?.none, UUID?.none, noDate, [String]?.none, nil]
                )
                let row = try #require(try await pool.query("SELECT * FROM samples").first)
                #expect(try row.isNull("s"))
                #expect(try row.decode("s", as: String?.self) == nil)
                #expect(try row.decode("i", as: Int?.self) == nil)
                #expect(try row.decode("b", as: Bool?.self) == nil)
                #expect(try row.decode("u", as: UUID?.self) == nil)
                #expect(try row.decode("ts", as: Date?.self) == nil)
                #expect(try row.decode("arr", as: [String]?.self) == nil)
                #expect(row["j"] == nil)
                #expect(try row.decode("id", as: Int?.self) == 1)
                // Both overloads are picked by the declared type alone.
                let id: Int = try row.decode("id")
                let missing: String? = try row.decode("s")
                #expect(id == 1 && missing == nil)
                let error = try #require(throws: PostgresError.self) { try row.decode("s", as: String.self) }
                #expect(error.kind == .decoding)
                #expect(error.message.contains("\"s\""))
            }
        }

        @Test func decodingErrorsNameTheColumn() async throws {
            try await withScratchPool { _, pool in
                let row = try #require(try await pool.query("SELECT 'abc'::text AS word, ARRAY['a', NULL]::text[] AS holes").first)
                #expect(row.columnNames == ["word", "holes"])
                let unknown = try #require(throws: PostgresError.self) { try row.decode("missing", as: String.self) }
                #expect(unknown.kind == .decoding)
                #expect(unknown.message.contains("missing"))
                #expect(row["missing"] == nil)
                let notAnInt = try #require(throws: PostgresError.self) { try row.decode("word", as: Int.self) }
                #expect(notAnInt.message.contains("word"))
                let nullElement = try #require(throws: PostgresError.self) { try row.decode("holes", as: [String].self) }
                #expect(nullElement.kind == .decoding)
            }
        }

        @Test func timestampsWithOtherOffsetsAndPrecisions() async throws {
            try await withScratchPool { _, pool in
                let row = try #require(try await pool.query("""
                    SELECT '2024-01-01 05:30:00+05:30'::timestamptz AS shifted,
                           '2024-01-01 00:00:00.5+00'::timestamptz AS half,
                           '2024-01-01'::date AS day,
                           '2024-01-01 00:00:00'::timestamp AS naive
                    """).first)
                let midnight = Date(timeIntervalSince1970: 1_704_067_200)
                #expect(try row.decode("shifted", as: Date.self) == midnight)
                #expect(try row.decode("half", as: Date.self) == midnight.addingTimeInterval(0.5))
                #expect(try row.decode("day", as: Date.self) == midnight)
                #expect(try row.decode("naive", as: Date.self) == midnight)
            }
        }

        @Test func injectionShapedValuesAreStoredVerbatim() async throws {
            try await withScratchPool { _, pool in
                try await pool.query("CREATE TABLE notes (body text)")
                let hostile = [
                    "'); DROP TABLE notes; --",
                    "\\'; SELECT pg_sleep(10); --",
                    "$1 $2 \\x00 \" ' ;",
                    "Robert'); DELETE FROM notes WHERE ('1'='1",
                ]
                for value in hostile {
                    try await pool.query("INSERT INTO notes (body) VALUES ($1)", [value])
                }
                let stored = try await pool.query("SELECT body FROM notes ORDER BY body").map { try $0.decode("body", as: String.self) }
                #expect(stored == hostile.sorted())
                let matched = try await pool.query("SELECT count(*) AS n FROM notes WHERE body = $1", [hostile[0]])
                #expect(try matched[0].decode("n", as: Int.self) == 1)
            }
        }
    }
}

private func microseconds(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
}
