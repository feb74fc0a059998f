import Testing
@testable import AppRouter

@Test func moduleLinks() { _ = AppRouterModule.self }
