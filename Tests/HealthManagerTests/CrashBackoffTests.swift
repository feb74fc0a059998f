import HealthManager
import Testing

@Suite struct CrashBackoffTests {
    let backoff = CrashBackoff()

    @Test func waitsFollowTheCloudFoundrySchedule() {
        let waits = (1...10).map { backoff.delay(afterCrashes: $0) }
        #expect(waits == [0, 0, 0, 30, 60, 120, 240, 480, 960, 960])
    }

    @Test func waitIsCappedAtSixteenMinutesUpToTheLastRestart() {
        for count in 9...199 { #expect(backoff.delay(afterCrashes: count) == 960, "crash \(count)") }
    }

    @Test func givesUpAtTwoHundredCrashes() {
        #expect(backoff.delay(afterCrashes: 199) != nil)
        #expect(backoff.delay(afterCrashes: 200) == nil)
        #expect(backoff.delay(afterCrashes: 10_000) == nil)
    }

    @Test func aCountOfZeroIsTreatedAsTheFirstCrash() {
        #expect(backoff.delay(afterCrashes: 0) == 0)
    }
}
