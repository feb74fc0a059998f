import Testing
@testable import ExecutionAgent

@Test func moduleLinks() { _ = ExecutionAgentModule.self }
