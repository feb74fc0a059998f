import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PlatformModels

/// The client components (agents, stagers, routers, the health manager) use for the CC's
/// internal API: `Authorization: component <credential>`, JSON both ways, per-call timeouts
/// (long-polls pass a longer one), and errors that say whether the CC was reachable at all.
public final class ComponentClient: Sendable {
    /// A failed call.
    public enum Failure: Error, CustomStringConvertible, Sendable, Equatable {
        /// No answer: connection refused, timeout, reset. The caller keeps its last state.
        case unreachable(String)
        /// The CC answered with a non-2xx status.
        case status(Int, String)

        public var description: String {
            switch self {
            case .unreachable(let why): return "cloud controller unreachable: \(why)"
            case .status(let code, let detail): return "cloud controller answered \(code): \(detail)"
            }
        }

        /// The HTTP status, if the CC answered.
        public var statusCode: Int? {
            if case .status(let code, _) = self { return code }
            return nil
        }
    }

    /// Base URL of the CC, without a trailing slash.
    public let api: String
    /// Names the component in the CC's access log (`User-Agent`).
    public let component: String
    private let credential: String
    private let http: HTTPClient
    private let timeout: TimeAmount

    public init(api: String, credential: String, component: String, timeoutSeconds: Int64 = 15) {
        var base = api
        while base.hasSuffix("/") { base.removeLast() }
        self.api = base
        self.credential = credential
        self.component = component
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(5), read: nil)
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        self.timeout = .seconds(timeoutSeconds)
    }

    deinit {
        try? http.syncShutdown()
    }

    /// Shuts the connection pool down; call before the process exits.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    private func request(_ method: HTTPMethod, _ path: String, body: Data?) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: api + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "component \(credential)")
        request.headers.add(name: "User-Agent", value: "cf-like-\(component)/\(PlatformVersion.current)")
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        return request
    }

    private func execute(_ request: HTTPClientRequest, timeout: TimeAmount?) async throws -> HTTPClientResponse {
        do {
            return try await http.execute(request, timeout: timeout ?? self.timeout)
        } catch let error as HTTPClientError {
            throw Failure.unreachable(String(describing: error))
        } catch let error as ChannelError {
            throw Failure.unreachable(String(describing: error))
        } catch let error as IOError {
            throw Failure.unreachable(error.description)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw Failure.unreachable(String(describing: error))
        }
    }

    private static func detail(of buffer: ByteBuffer) -> String {
        let data = Data(buffer.readableBytesView)
        if let envelope = try? JSONDecoder().decode(APIErrorEnvelope.self, from: data), let first = envelope.errors.first {
            return first.detail
        }
        let text = String(decoding: data, as: UTF8.self)
        return text.isEmpty ? "no detail" : String(text.prefix(500))
    }

    /// Sends `body` (JSON) and decodes the JSON answer.
    public func call<Answer: Decodable>(_ method: HTTPMethod, _ path: String, json body: (any Encodable)? = nil,
                                        as type: Answer.Type, timeout: TimeAmount? = nil) async throws -> Answer {
        let data = try body.map { try JSONEncoder().encode($0) }
        let response = try await execute(request(method, path, body: data), timeout: timeout)
        let buffer: ByteBuffer
        do {
            buffer = try await response.body.collect(upTo: 256 << 20)
        } catch {
            throw Failure.unreachable("answer cut short: \(error)")
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Failure.status(Int(response.status.code), Self.detail(of: buffer))
        }
        return try JSONDecoder().decode(Answer.self, from: Data(buffer.readableBytesView))
    }

    /// Sends `body` (JSON) and expects a 2xx answer whose body is ignored.
    public func send(_ method: HTTPMethod, _ path: String, json body: (any Encodable)? = nil,
                     timeout: TimeAmount? = nil) async throws {
        let data = try body.map { try JSONEncoder().encode($0) }
        let response = try await execute(request(method, path, body: data), timeout: timeout)
        let buffer = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Failure.status(Int(response.status.code), Self.detail(of: buffer))
        }
    }

    /// Streams a GET answer's body into `write`, chunk by chunk; returns the response headers.
    /// Nothing is buffered beyond one chunk, so gigabyte downloads take constant memory.
    public func download(_ path: String, timeout: TimeAmount = .minutes(10),
                         write: (ByteBuffer) throws -> Void) async throws -> [(String, String)] {
        let response = try await execute(request(.GET, path, body: nil), timeout: timeout)
        guard response.status == .ok else {
            let buffer = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            throw Failure.status(Int(response.status.code), Self.detail(of: buffer))
        }
        do {
            for try await chunk in response.body { try write(chunk) }
        } catch let failure as Failure {
            throw failure
        } catch let error as HTTPClientError {
            throw Failure.unreachable("download cut short: \(error)")
        }
        return response.headers.map { ($0.name, $0.value) }
    }

    // MARK: Typed calls

    /// The route table, long-polled: answers at once if its version differs from `after`.
    public func routeTable(after version: Int?, waitSeconds: Int = 30) async throws -> RouteTable {
        try await routeTable(after: version, waitSeconds: waitSeconds, reporting: nil)
    }

    /// The route table, long-polled, telling the CC which router asks and how fresh its table is.
    public func routeTable(after version: Int?, waitSeconds: Int, reporting report: RouterPollReport?) async throws -> RouteTable {
        try await call(.GET, Self.routeTablePath(after: version, waitSeconds: waitSeconds, reporting: report), as: RouteTable.self,
                       timeout: .seconds(Int64(waitSeconds) + 15))
    }

    /// `/internal/v1/routes?wait=S[&after=V][&router_id=...]`, values percent-encoded.
    public static func routeTablePath(after version: Int?, waitSeconds: Int, reporting report: RouterPollReport?) -> String {
        var path = "/internal/v1/routes?wait=\(waitSeconds)"
        if let version { path += "&after=\(version)" }
        for item in report?.queryItems ?? [] { path += "&\(item.name)=\(segment(item.value))" }
        return path
    }

    /// Registers (or re-registers) an agent.
    public func registerAgent(_ id: String, _ registration: AgentRegistration) async throws -> AgentRegistered {
        try await call(.PUT, "/internal/v1/agents/\(Self.segment(id))", json: registration, as: AgentRegistered.self)
    }

    /// Sends an agent's heartbeat.
    public func heartbeat(agent id: String, _ heartbeat: AgentHeartbeat) async throws -> HeartbeatAck {
        try await call(.PUT, "/internal/v1/agents/\(Self.segment(id))/heartbeat", json: heartbeat, as: HeartbeatAck.self)
    }

    /// The agent's assignments, long-polled: answers at once if the version differs from `after`.
    public func assignments(agent id: String, after version: Int?, waitSeconds: Int = 30) async throws -> AgentAssignments {
        var path = "/internal/v1/agents/\(Self.segment(id))/assignments?wait=\(waitSeconds)"
        if let version { path += "&after=\(version)" }
        return try await call(.GET, path, as: AgentAssignments.self, timeout: .seconds(Int64(waitSeconds) + 15))
    }

    /// Reports instance events.
    public func report(agent id: String, events: [InstanceEvent]) async throws {
        try await send(.POST, "/internal/v1/agents/\(Self.segment(id))/events", json: InstanceEventBatch(events: events))
    }

    /// Ships log lines.
    public func ship(logs lines: [LogLine]) async throws {
        try await send(.POST, "/internal/v1/logs", json: LogBatch(lines: lines))
    }

    /// Streams a file as the raw body of `method path` (no buffering beyond one chunk) and
    /// decodes the JSON answer. The body is sent with its length, as
    /// `application/octet-stream`.
    public func upload<Answer: Decodable>(_ method: HTTPMethod, _ path: String, file: String, as type: Answer.Type,
                                          timeout: TimeAmount = .minutes(10)) async throws -> Answer {
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw Failure.unreachable("cannot read \(file)")
        }
        defer { try? handle.close() }
        let size = Int64((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0)
        var request = request(method, path, body: nil)
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        // Pulled one chunk at a time as the connection drains, so memory stays flat.
        let chunks = AsyncThrowingStream<ByteBuffer, any Error>(unfolding: {
            let data = try handle.read(upToCount: 1 << 20) ?? Data()
            return data.isEmpty ? nil : ByteBuffer(data: data)
        })
        request.body = .stream(chunks, length: .known(size))
        let response = try await execute(request, timeout: timeout)
        let buffer: ByteBuffer
        do {
            buffer = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw Failure.unreachable("answer cut short: \(error)")
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Failure.status(Int(response.status.code), Self.detail(of: buffer))
        }
        return try JSONDecoder().decode(Answer.self, from: Data(buffer.readableBytesView))
    }

    // MARK: Staging

    /// Polls for staging work (and heartbeats): answers at once with claimed builds, or after
    /// up to `waitSeconds` with none.
    public func pollStaging(stager id: String, _ poll: StagerPoll) async throws -> StagerPollAnswer {
        try await call(.POST, "/internal/v1/stagers/\(Self.segment(id))/poll", json: poll, as: StagerPollAnswer.self,
                       timeout: .seconds(Int64(poll.waitSeconds) + 15))
    }

    /// Uploads a build's droplet (a tar.gz file), streamed.
    public func uploadDroplet(build guid: String, file: String) async throws -> StagingBlobStored {
        try await upload(.PUT, "/internal/v1/staging/\(Self.segment(guid))/droplet", file: file, as: StagingBlobStored.self)
    }

    /// Uploads a build's new buildpack cache (a tar.gz file), streamed.
    public func uploadCache(build guid: String, file: String) async throws -> StagingBlobStored {
        try await upload(.PUT, "/internal/v1/staging/\(Self.segment(guid))/cache", file: file, as: StagingBlobStored.self)
    }

    /// Reports a build's outcome.
    public func completeStaging(build guid: String, _ result: StagingResult) async throws {
        try await send(.POST, "/internal/v1/staging/\(Self.segment(guid))/complete", json: result)
    }

    /// Percent-encodes one path segment.
    public static func segment(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
