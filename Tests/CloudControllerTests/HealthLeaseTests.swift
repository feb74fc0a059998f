import Foundation
import PlatformModels
import Testing

@testable import CloudController

/// Calls and checks around the health manager lease.
extension Platform {
    /// The lease a successful ask granted.
    func grantedLease(_ reply: Reply) throws -> HealthLease {
        guard reply.status == .ok else { throw TestFailure("lease: \(reply.status) \(reply.body)") }
        return try JSONDecoder().decode(HealthLease.self, from: Data(reply.body.utf8))
    }

    /// What applying no actions answers for `holder`: 200 while it holds the lease, 409 once not.
    func fencedActions(_ holder: String) async throws -> Reply {
        try await component(.post, "/internal/v1/health/actions", body: HealthActions(holder: holder, actions: []))
    }

    /// Waits until the database's clock (the one expiry is judged by) is past `expiresAt`.
    func waitForDatabaseClock(pastUnixSeconds expiresAt: Double, within: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + within
        while try await pool.query("SELECT clock_timestamp() > to_timestamp($1) AS past", [expiresAt]).rows[0]
            .decode("past", as: Bool.self) == false {
            guard ContinuousClock.now < deadline else { throw TestFailure("the database clock did not pass \(expiresAt) within \(within)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

extension ControllerIntegration {
    /// The lease semantics the health manager relies on, through the internal API.
    @Suite(.serialized, .timeLimit(.minutes(2))) struct HealthLeaseAPI {
        @Test func askingAgainIsHowTheHolderKeepsAndExtendsIt() async throws {
            try await Platform.run { p in
                let first = try p.grantedLease(try await p.takeLease("hm-1", seconds: 1))
                let renewed = try p.grantedLease(try await p.takeLease("hm-1", seconds: 30))
                #expect(renewed.holder == "hm-1")
                #expect(renewed.expiresAt - first.expiresAt >= 28, "the renewal counts from now, not from the first expiry")
                // Past the first expiry, but well within the renewed one: still hm-1's.
                try await p.waitForDatabaseClock(pastUnixSeconds: first.expiresAt)
                let refused = try await p.takeLease("hm-2")
                #expect(refused.status == .conflict && refused.errorDetail.contains("hm-1"))
                #expect(try await p.fencedActions("hm-1").status == .ok)
            }
        }

        @Test func concurrentContendersNeverBothWin() async throws {
            try await Platform.run { p in
                for round in 0..<5 {
                    let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                        for holder in 0..<4 { group.addTask { try await p.takeLease("hm-\(round)-\(holder)") } }
                        return try await group.reduce(into: [Reply]()) { $0.append($1) }
                    }
                    let winners = replies.filter { $0.status == .ok }
                    #expect(winners.count == 1, "round \(round)")
                    #expect(replies.filter { $0.status == .conflict }.count == 3, "round \(round)")
                    // The winner hands over, so the next round contends for a free lease again.
                    let winner = try p.grantedLease(try #require(winners.first)).holder
                    #expect(try await p.component(.delete, "/internal/v1/health/lease?holder=\(winner)").status == .noContent)
                }
            }
        }

        @Test func aLapsedLeaseIsTakenOverAndItsOldHolderIsFenced() async throws {
            try await Platform.run { p in
                let lease = try p.grantedLease(try await p.takeLease("hm-1", seconds: 1))
                #expect(try await p.takeLease("hm-2").status == .conflict)
                try await p.waitForDatabaseClock(pastUnixSeconds: lease.expiresAt)
                // It may have decided on a lease it no longer has: nothing it sends is applied.
                #expect(try await p.fencedActions("hm-1").status == .conflict)
                #expect(try p.grantedLease(try await p.takeLease("hm-2")).holder == "hm-2")
                // Once taken over, the old holder can neither take it back nor act.
                let back = try await p.takeLease("hm-1")
                #expect(back.status == .conflict && back.errorDetail.contains("hm-2"))
                #expect(try await p.fencedActions("hm-1").status == .conflict)
                let alerts = HealthAlertSet(holder: "hm-1", alerts: [])
                #expect(try await p.component(.put, "/internal/v1/health/alerts", body: alerts).status == .conflict)
                #expect(try await p.fencedActions("hm-2").status == .ok)
            }
        }

        @Test func aLapsedLeaseNobodyTookCanBeTakenAgainByItsHolder() async throws {
            try await Platform.run { p in
                let lease = try p.grantedLease(try await p.takeLease("hm-1", seconds: 1))
                try await p.waitForDatabaseClock(pastUnixSeconds: lease.expiresAt)
                #expect(try await p.fencedActions("hm-1").status == .conflict, "a lapsed lease is not renewed by acting")
                #expect(try p.grantedLease(try await p.takeLease("hm-1")).holder == "hm-1")
                #expect(try await p.fencedActions("hm-1").status == .ok)
            }
        }

        @Test func onlyTheHolderCanReleaseIt() async throws {
            try await Platform.run { (p: Platform) async throws in
                #expect(try await p.takeLease("hm-1").status == .ok)
                // Releasing what one does not hold is a no-op (and says nothing of who holds it).
                #expect(try await p.component(.delete, "/internal/v1/health/lease?holder=hm-2").status == .noContent)
                #expect(try await p.takeLease("hm-2").status == .conflict)
                #expect(try await p.fencedActions("hm-1").status == .ok)
                #expect(try await p.component(.delete, "/internal/v1/health/lease?holder=hm-1").status == .noContent)
                #expect(try p.grantedLease(try await p.takeLease("hm-2")).holder == "hm-2", "a release hands over at once")
            }
        }
    }
}
