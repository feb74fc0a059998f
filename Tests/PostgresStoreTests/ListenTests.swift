import Foundation
import PostgresStore
import Testing

extension PostgresIntegration {
    @Suite struct ListenNotify {
        @Test func notificationsAreDeliveredInOrder() async throws {
            try await withScratchPool { _, pool in
                try await withWatchdog(pool) {
                    let stream = try await pool.startListening(channels: ["app_events", "other"])
                    try await pool.notify(channel: "app_events", payload: "first")
                    try await pool.notify(channel: "other", payload: "with 'quotes' and \"more\"")
                    try await pool.notify(channel: "unheard", payload: "ignored")
                    try await pool.notify(channel: "app_events", payload: "")
                    var events: [PostgresNotificationEvent] = []
                    for await event in stream {
                        events.append(event)
                        if events.count == 3 { break }
                    }
                    #expect(events == [
                        .notification(channel: "app_events", payload: "first"),
                        .notification(channel: "other", payload: "with 'quotes' and \"more\""),
                        .notification(channel: "app_events", payload: ""),
                    ])
                }
            }
        }

        @Test func plainListenEventuallyDelivers() async throws {
            try await withScratchPool { _, pool in
                try await withWatchdog(pool) {
                    let stream = pool.listen(channels: ["ticks"])
                    // listen(channels:) returns before LISTEN is in effect, so keep sending until one arrives.
                    let sender = Task {
                        while !Task.isCancelled {
                            try await pool.notify(channel: "ticks", payload: "tick")
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    defer { sender.cancel() }
                    var first: PostgresNotificationEvent?
                    for await event in stream {
                        first = event
                        break
                    }
                    #expect(first == .notification(channel: "ticks", payload: "tick"))
                }
            }
        }

        @Test func invalidChannelNamesAreRefused() async throws {
            try await withScratchPool { _, pool in
                try await withWatchdog(pool) {
                    for name in ["Upper", "has-dash", "1digit", "", "quote\"d", String(repeating: "a", count: 64)] {
                        let error = try await #require(throws: PostgresError.self) { try await pool.startListening(channels: [name]) }
                        #expect(error.kind == .usage)
                        var count = 0
                        for await _ in pool.listen(channels: [name]) { count += 1 }
                        #expect(count == 0)
                    }
                }
            }
        }

        @Test func streamEndsWhenThePoolShutsDown() async throws {
            try await withScratchPool { _, pool in
                let stream = try await pool.startListening(channels: ["ending"])
                await pool.shutdown()
                var count = 0
                for await _ in stream { count += 1 }
                #expect(count == 0)
            }
        }
    }
}
