import Foundation
import HealthManager
import Logging
import PostgresStore
import Testing
import TestSupport

/// The lease against a real PostgreSQL (`CFLIKE_TEST_DATABASE_URL`).
@Suite(.serialized) struct LeaseTests {
    let logger = Logger(label: "HealthManagerTests")

    func withLeaseDatabase(_ body: (PostgresPool) async throws -> Void) async throws {
        let database = try await ScratchDatabase.create(logger: logger)
        let pool = PostgresPool(configuration: PostgresConfiguration(conninfo: database.conninfo, poolSize: 4), logger: logger)
        do {
            try await Lease.prepare(pool)
            try await body(pool)
        } catch {
            await pool.shutdown()
            await database.drop()
            throw error
        }
        await pool.shutdown()
        await database.drop()
    }

    func holders(_ pool: PostgresPool, duration: Duration = .seconds(30)) -> (Lease, Lease) {
        (Lease(name: "health-manager", holder: "hm-1", duration: duration, pool: pool),
         Lease(name: "health-manager", holder: "hm-2", duration: duration, pool: pool))
    }

    @Test func onlyOneOfTwoHoldersGetsIt() async throws {
        try await withLeaseDatabase { (pool: PostgresPool) async throws in
            let (first, second) = holders(pool)
            #expect(try await first.acquire() != nil)
            #expect(try await second.acquire() == nil)
            #expect(try await second.renew() == nil)
            // Acquiring again is how the holder keeps it, too.
            #expect(try await first.acquire() != nil)
        }
    }

    @Test func concurrentContendersNeverBothWin() async throws {
        try await withLeaseDatabase { (pool: PostgresPool) async throws in
            for round in 0..<10 {
                let name = "race-\(round)"
                let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for holder in 0..<4 {
                        group.addTask {
                            try await Lease(name: name, holder: "hm-\(holder)", duration: .seconds(30), pool: pool).acquire() != nil
                        }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(winners == 1, "round \(round)")
            }
        }
    }

    @Test func theOtherHolderTakesOverAfterExpiry() async throws {
        try await withLeaseDatabase { (pool: PostgresPool) async throws in
            let (first, second) = holders(pool, duration: .milliseconds(300))
            #expect(try await first.acquire() != nil)
            #expect(try await second.acquire() == nil)
            // Expiry is the database's clock: wait for it there rather than trusting one sleep.
            var taken: Date?
            let started = ContinuousClock.now
            while taken == nil, ContinuousClock.now - started < .seconds(10) {
                try await Task.sleep(for: .milliseconds(100))
                taken = try await second.acquire()
            }
            #expect(taken != nil, "the lease was never taken over")
            #expect(ContinuousClock.now - started >= .milliseconds(200), "not before it expired")
            // The old holder has lost it: it can neither renew nor take it back.
            #expect(try await first.renew() == nil)
            #expect(try await first.acquire() == nil)
        }
    }

    @Test func renewalByTheHolderExtendsIt() async throws {
        try await withLeaseDatabase { (pool: PostgresPool) async throws in
            // Generous durations: a loaded CI machine may stall a task for a second or more.
            let (first, second) = holders(pool, duration: .seconds(6))
            let acquired = try #require(try await first.acquire())
            try await Task.sleep(for: .seconds(2))
            let renewed = try #require(try await first.renew())
            #expect(renewed.timeIntervalSince(acquired) >= 1.5, "renewal moves the expiry on by the time since acquiring")
            // Past the first expiry, but well within the renewed one.
            while Date() < acquired.addingTimeInterval(0.3) {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(Date() < renewed, "the machine stalled past the renewed expiry; the check below would be meaningless")
            #expect(try await second.acquire() == nil)
        }
    }

    @Test func aLapsedLeaseCannotBeRenewedButCanBeAcquiredAgain() async throws {
        try await withLeaseDatabase { (pool: PostgresPool) async throws in
            let (first, _) = holders(pool, duration: .milliseconds(300))
            #expect(try await first.acquire() != nil)
            try await Task.sleep(for: .milliseconds(500))
            // Its holder may have acted on a lease it no longer had: it must find out.
            #expect(try await first.renew() == nil)
            #expect(try await first.acquire() != nil)
        }
    }

    @Test func aReleaseLetsTheOtherAcquireAtOnce() async throws {
        try await withLeaseDatabase { (pool: PostgresPool) async throws in
            let (first, second) = holders(pool)
            #expect(try await first.acquire() != nil)
            #expect(try await second.release() == false)
            #expect(try await second.acquire() == nil)
            #expect(try await first.release() == true)
            #expect(try await second.acquire() != nil)
        }
    }

    @Test func leasesWithDifferentNamesAreIndependent() async throws {
        try await withLeaseDatabase { (pool: PostgresPool) async throws in
            #expect(try await Lease(name: "health-manager", holder: "hm-1", duration: .seconds(30), pool: pool).acquire() != nil)
            #expect(try await Lease(name: "something-else", holder: "hm-2", duration: .seconds(30), pool: pool).acquire() != nil)
        }
    }

    @Test func prepareIsIdempotentAndSafeToRunConcurrently() async throws {
        try await withLeaseDatabase { (pool: PostgresPool) async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { try await Lease.prepare(pool) } }
                try await group.waitForAll()
            }
            #expect(try await holders(pool).0.acquire() != nil)
        }
    }
}
