import Dispatch
import Foundation
import PlatformClient
import PlatformModels

/// Ctrl-C during `push`: a SIGINT handler cancels the push task, and the push then undoes what
/// it made that the user did not ask for. It records what this push created as it goes.
///
/// - Before the app is updated and started (`preparing`): an app this push created is deleted,
///   with the routes this push created; an existing app gets its environment variables back and
///   is otherwise untouched (the package and build this push made remain, unused).
/// - While the app is being updated (`committing`, a few quick calls after staging): the signal
///   is held until the app has been told to start, then the push stops waiting.
/// - Once the app was told to start (`started`): the push stops waiting; the app keeps starting.
///   With `--no-start`, the push ends `updated`.
/// A second Ctrl-C exits at once.
final class PushInterrupt: @unchecked Sendable {
    enum Phase: Equatable, Sendable { case preparing, committing, started, updated }

    private let lock = NSLock()
    private var source: (any DispatchSourceSignal)?
    private var task: Task<Void, any Error>?
    private var _fired = false
    private var _phase = Phase.preparing
    private var cleaning = false

    private(set) var appName = ""
    private(set) var createdApp: String?
    private(set) var creatingApp = false
    private(set) var existingApp: String?
    private(set) var envRestore: [String: String?]?
    private(set) var createdRoutes: [(guid: String, url: String)] = []
    private(set) var pendingRoute: (host: String, path: String, domain: String)?
    private(set) var madePackage = false
    private(set) var madeBuild = false

    var fired: Bool { lock.withLock { _fired } }
    var phase: Phase { lock.withLock { _phase } }

    /// Catches SIGINT (instead of dying) until `remove`.
    func install() {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [weak self] in self?.fire() }
        source.resume()
        self.source = source
    }

    func remove() {
        source?.cancel()
        source = nil
        signal(SIGINT, SIG_DFL)
    }

    /// The push task to cancel on Ctrl-C (cancelled at once if the signal came first).
    func watch(_ task: Task<Void, any Error>) {
        let cancel = lock.withLock { () -> Bool in
            self.task = task
            return _fired && _phase != .committing
        }
        if cancel { task.cancel() }
    }

    /// What the handler does; also the seam for tests.
    func fire() {
        let (again, task, phase, cleaning) = lock.withLock { () -> (Bool, Task<Void, any Error>?, Phase, Bool) in
            let again = _fired
            _fired = true
            return (again, self.task, _phase, self.cleaning)
        }
        if again || cleaning {
            FileHandle.standardError.write(Data("\nInterrupted again: exiting now; the clean-up may be incomplete.\n".utf8))
            exit(130)
        }
        FileHandle.standardError.write(Data("\nInterrupted.\n".utf8))
        if phase != .committing { task?.cancel() }
    }

    /// Moves to `phase`; throws `CancellationError` when Ctrl-C came in the meantime. An
    /// interrupted push stays `preparing` (nothing of the app was changed yet); once committing,
    /// the phase moves on regardless, as the app was changed.
    func enter(_ phase: Phase) throws {
        let fired = lock.withLock { () -> Bool in
            if !_fired || _phase != .preparing { _phase = phase }
            return _fired
        }
        if fired { throw CancellationError() }
    }

    func note(_ change: (PushInterrupt) -> Void) { lock.withLock { change(self) } }
    func setAppName(_ name: String) { note { $0.appName = name } }
    func creating() { note { $0.creatingApp = true } }
    func created(app guid: String) { note { $0.createdApp = guid } }
    func existing(app guid: String) { note { $0.existingApp = guid } }
    func restore(env: [String: String?]) { note { $0.envRestore = env } }
    func creatingRoute(host: String, path: String, domain: String) { note { $0.pendingRoute = (host, path, domain) } }
    func created(route guid: String, url: String) { note { $0.createdRoutes.append((guid, url)); $0.pendingRoute = nil } }
    func packageMade() { note { $0.madePackage = true } }
    func buildMade() { note { $0.madeBuild = true } }

    /// Undoes what the push made, as far as the phase allows, and says what it did. Runs outside
    /// the cancelled push task.
    func undo(_ session: Session) async {
        lock.withLock { cleaning = true }
        let me = self
        await Task.detached { await me.undoNow(session) }.value
    }

    private func say(_ line: String) { print(line); fflush(nil) }

    private func undoNow(_ session: Session) async {
        switch phase {
        case .started:
            say("Push interrupted: \(appName) was already told to start and keeps starting; `cf-like app \(appName)` shows how it goes.")
            return
        case .updated:
            say("Push interrupted: \(appName) was already updated with the new droplet and settings (not started, as asked).")
            return
        case .committing:
            say("Push interrupted while \(appName) was being updated: its settings may be partly applied; push again to finish.")
            return
        case .preparing:
            break
        }
        var app = createdApp
        if app == nil, creatingApp, existingApp == nil,
           let found = try? await session.app(named: appName) {
            app = found.guid  // the create request went through before the interrupt
        }
        if let app {
            var routes = createdRoutes
            if let pending = pendingRoute, let found = try? await session.call(
                "GET", "/v3/routes?hosts=\(PlatformClient.query(pending.host))&domain_guids=\(pending.domain)",
                as: ListResponse<RouteResource>.self).resources.first(where: { $0.path == pending.path }) {
                routes.append((found.guid, found.url))
            }
            do {
                try PlatformClient.check(try await session.send("DELETE", "/v3/apps/\(app)"))
                for route in routes {
                    try PlatformClient.check(try await session.send("DELETE", "/v3/routes/\(route.guid)"))
                }
                let what = routes.isEmpty ? "" : " and the route\(routes.count == 1 ? "" : "s") \(routes.map(\.url).joined(separator: ", "))"
                say("Push interrupted: deleted the app \(appName)\(what) that this push created.")
            } catch {
                say("Push interrupted, but deleting the app \(appName) this push created failed: \(error)")
                say("Delete it with `cf-like delete \(appName) -r -f`.")
            }
            return
        }
        guard let existing = existingApp else {
            say("Push interrupted before anything was created.")
            return
        }
        var restored = ""
        if let env = envRestore, !env.isEmpty {
            do {
                _ = try await session.call("PATCH", "/v3/apps/\(existing)/environment_variables",
                                           json: EnvironmentVariablesPatch(var: env), as: EnvironmentVariablesResource.self)
                restored = " (its environment variables were put back)"
            } catch {
                restored = " except its environment variables, which could not be put back: \(error)"
            }
        }
        say("Push interrupted: the app \(appName) is as it was\(restored); it runs what it ran before.")
        if madeBuild {
            say("The package and the build (droplet) this push made remain on the platform, unused; `cf-like droplets \(appName)` lists them.")
        } else if madePackage {
            say("The package this push uploaded remains on the platform, unused.")
        }
    }
}
