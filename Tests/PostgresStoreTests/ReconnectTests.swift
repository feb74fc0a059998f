import Foundation
import PostgresStore
import Synchronization
import Testing

extension PostgresIntegration {
    @Suite struct Reconnect {
        @Test func queryAfterBackendsAreKilledSucceeds() async throws {
            try await withScratchPool(poolSize: 2) { database, pool in
                // Open both connections so the pool holds two idle ones.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<2 { group.addTask { try await pool.query("SELECT pg_sleep(0.1)") } }
                    try await group.waitForAll()
                }
                let before = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int.self)
                #expect(try await terminateBackends(of: database) >= 2)

                let after = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int.self)
                #expect(after != before)
                // The second dead connection is replaced the same way, inside a transaction too.
                let value = try await pool.transaction { connection in
                    try connection.query("SELECT 41 + 1 AS answer")[0].decode("answer", as: Int.self)
                }
                #expect(value == 42)
            }
        }

        @Test func closureIsRetriedOnlyWhenItsFirstStatementHitADeadConnection() async throws {
            try await withScratchPool(poolSize: 1) { database, pool in
                try await pool.query("SELECT 1")
                try await terminateBackends(of: database)
                let calls = Atomic<Int>(0)
                let result = try await pool.withConnection { connection in
                    calls.add(1, ordering: .relaxed)
                    return try connection.query("SELECT 'ok' AS status")[0].decode("status", as: String.self)
                }
                #expect(result == "ok")
                #expect(calls.load(ordering: .relaxed) == 2)
            }
        }

        @Test func noRetryAfterAStatementSucceeded() async throws {
            try await withScratchPool(poolSize: 1) { _, pool in
                try await pool.query("SELECT 1")
                let calls = Atomic<Int>(0)
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.withConnection { connection in
                        calls.add(1, ordering: .relaxed)
                        try connection.query("SELECT 1")
                        try connection.query("SELECT pg_terminate_backend(pg_backend_pid())")
                    }
                }
                #expect(error.isConnectionError)
                #expect(calls.load(ordering: .relaxed) == 1)
                // The broken connection was discarded, not pooled.
                #expect(try await pool.query("SELECT 3 AS three")[0].decode("three", as: Int.self) == 3)
            }
        }

        @Test func listenerReconnectsAndKeepsDelivering() async throws {
            try await withScratchPool { database, pool in
                try await withWatchdog(pool, seconds: 20) {
                    let stream = try await pool.startListening(channels: ["jobs"])
                    var iterator = stream.makeAsyncIterator()
                    try await pool.notify(channel: "jobs", payload: "before")
                    #expect(await iterator.next() == .notification(channel: "jobs", payload: "before"))

                    #expect(try await terminateBackends(of: database) >= 1)
                    #expect(await iterator.next() == .reconnected)

                    try await pool.notify(channel: "jobs", payload: "after")
                    #expect(await iterator.next() == .notification(channel: "jobs", payload: "after"))
                }
            }
        }
    }
}
