import Foundation
import PostgresStore
import Testing

extension PostgresIntegration {
    @Suite struct Pool {
        @Test func poolIsBoundedAndQueuesCallers() async throws {
            try await withScratchPool(poolSize: 2) { _, pool in
                let start = ContinuousClock.now
                let pids = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<10 {
                        group.addTask {
                            try await pool.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.2)")[0].decode("pid", as: Int.self)
                        }
                    }
                    return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
                }
                let elapsed = ContinuousClock.now - start
                // Ten 0.2 s statements through two connections need five rounds.
                #expect(elapsed >= .milliseconds(950))
                #expect(elapsed < .seconds(30), "a sanity bound; the queueing shows in the lower one")
                #expect(pids.count <= 2)
            }
        }

        @Test func cancelledWaiterDoesNotLeakASlot() async throws {
            try await withScratchPool(poolSize: 1) { _, pool in
                // The holder keeps the one connection far longer than the waiter needs to queue
                // and be cancelled, however slowly the machine schedules these tasks.
                let holder = Task { try await pool.query("SELECT pg_sleep(3)") }
                try await Task.sleep(for: .milliseconds(100))
                let waiter = Task { try await pool.query("SELECT 1") }
                try await Task.sleep(for: .milliseconds(50))
                waiter.cancel()
                await #expect(throws: CancellationError.self) { try await waiter.value }
                _ = try await holder.value
                #expect(try await pool.query("SELECT 2 AS two")[0].decode("two", as: Int.self) == 2)
            }
        }
    }
}
