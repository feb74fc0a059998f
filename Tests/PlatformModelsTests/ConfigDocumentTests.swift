import Foundation
import PlatformModels
import Testing

@Suite struct ConfigDocumentTests {
    func write(_ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)/config")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("cf-like.yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    @Test func readsSectionsAndEnvironmentOverrides() throws {
        let path = try write("controller:\n  listen: 127.0.0.1:9022\n  pool: 8\n  on: true\n")
        let doc = try ConfigDocument(path: path, environment: ["CFLIKE_CONTROLLER_POOL": "12"])
        #expect(try doc.hostPort("controller.listen", default: "x:1") == ("127.0.0.1", 9022))
        #expect(try doc.int("controller.pool", default: 1) == 12)
        #expect(try doc.bool("controller.on", default: false))
        #expect(doc.string("controller.missing", default: "d") == "d")
        #expect(ConfigDocument.environmentName("controller.database_url") == "CFLIKE_CONTROLLER_DATABASE_URL")
    }

    @Test func relativePathsResolveAgainstTheRepositoryRoot() throws {
        let path = try write("platform:\n  log_level: info\n")
        let doc = try ConfigDocument(path: path, environment: [:])
        let root = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent().standardizedFileURL.path
        #expect(doc.path("x.y", default: "var/secrets/k") == root + "/var/secrets/k")
        #expect(doc.path("x.y", default: "/abs") == "/abs")
    }

    @Test func badValuesNameTheKey() throws {
        let path = try write("controller:\n  listen: nonsense\n  pool: many\n")
        let doc = try ConfigDocument(path: path, environment: [:])
        #expect(throws: ConfigError.self) { try doc.int("controller.pool", default: 1) }
        do {
            _ = try doc.hostPort("controller.listen", default: "a:1")
            Issue.record("expected an error")
        } catch let error as ConfigError {
            #expect(error.description.contains("controller.listen"))
            #expect(error.description.contains("CFLIKE_CONTROLLER_LISTEN"))
        }
        #expect(throws: ConfigError.self) { try ConfigDocument(path: try write("- just\n- a list\n"), environment: [:]) }
        #expect(throws: ConfigError.self) { try ConfigDocument(path: "/nonexistent/cf-like.yaml", environment: [:]) }
    }
}
