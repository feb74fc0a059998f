import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PlatformModels

/// One instance of a process as `GET /v3/processes/:guid/stats` shows it.
public struct ProcessInstanceStats: Codable, Sendable, Equatable {
    public struct Usage: Codable, Sendable, Equatable {
        public var time: String?
        public var cpu: Double
        public var mem: Int64
        public var disk: Int64
    }
    public var type: String
    public var index: Int
    public var state: String
    public var usage: Usage
    public var host: String
    public var uptime: Int
    public var memQuota: Int64
    public var diskQuota: Int64
    public var details: String?

    enum CodingKeys: String, CodingKey {
        case type, index, state, usage, host, uptime, memQuota = "mem_quota", diskQuota = "disk_quota", details
    }

    public init(type: String, index: Int, state: String, usage: Usage, host: String, uptime: Int, memQuota: Int64, diskQuota: Int64,
                details: String?) {
        self.type = type; self.index = index; self.state = state; self.usage = usage; self.host = host; self.uptime = uptime
        self.memQuota = memQuota; self.diskQuota = diskQuota; self.details = details
    }
}

extension ProcessInstanceStats.Usage {
    public init(cpu: Double, mem: Int64, disk: Int64) { self.time = nil; self.cpu = cpu; self.mem = mem; self.disk = disk }
}

/// `GET /v3/processes/:guid/stats`.
public struct ProcessStatsList: Codable, Sendable {
    public var resources: [ProcessInstanceStats]
}

extension PlatformClient {
    /// Uploads a package's bits as CF clients do: multipart with a `resources` field (files the
    /// resource pool already holds) and a `bits` zip (absent when nothing is left to send).
    /// `progress` sees bytes sent so far and the total.
    public func uploadPackage(_ guid: String, zip: Data?, resources: [BitsResource], token: String?,
                              progress: (@Sendable (Int, Int) -> Void)? = nil) async throws -> PackageResource {
        let boundary = "cflike-" + UUID().uuidString
        var body = Data()
        func part(_ name: String, filename: String?, type: String, _ content: Data) {
            body.append(Data("--\(boundary)\r\n".utf8))
            var disposition = "Content-Disposition: form-data; name=\"\(name)\""
            if let filename { disposition += "; filename=\"\(filename)\"" }
            body.append(Data("\(disposition)\r\nContent-Type: \(type)\r\n\r\n".utf8))
            body.append(content)
            body.append(Data("\r\n".utf8))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        part("resources", filename: nil, type: "application/json", try encoder.encode(resources))
        if let zip { part("bits", filename: "application.zip", type: "application/zip", zip) }
        body.append(Data("--\(boundary)--\r\n".utf8))

        var request = HTTPClientRequest(url: api + "/v3/packages/\(guid)/upload")
        request.method = .POST
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "cf-like/\(PlatformVersion.current)")
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        if let token { request.headers.add(name: "Authorization", value: "bearer \(token)") }
        request.body = .stream(ProgressChunks(data: body, progress: progress), length: .known(Int64(body.count)))
        let response = try await httpClient.execute(request, timeout: .minutes(30))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        let answer = Answer(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                            body: Data(buffer.readableBytesView))
        try Self.check(answer)
        return try answer.decode(PackageResource.self)
    }

    /// Follows `GET /v3/apps/:guid/logs?follow=true`, calling `onLine` for each line until the
    /// server ends the stream or the task is cancelled.
    public func followLogs(app: String, after: Int64?, token: String?, onLine: (LogLine) -> Void) async throws {
        var url = api + "/v3/apps/\(app)/logs?follow=true"
        if let after { url += "&after=\(after)" }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/x-ndjson")
        request.headers.add(name: "User-Agent", value: "cf-like/\(PlatformVersion.current)")
        if let token { request.headers.add(name: "Authorization", value: "bearer \(token)") }
        let response = try await httpClient.execute(request, timeout: .hours(24 * 365))
        guard response.status == .ok else {
            let buffer = try await response.body.collect(upTo: 1 << 20)
            try Self.check(Answer(status: Int(response.status.code), headers: [], body: Data(buffer.readableBytesView)))
            return
        }
        var pending = Data()
        let decoder = JSONDecoder()
        for try await chunk in response.body {
            pending.append(contentsOf: chunk.readableBytesView)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[pending.index(after: newline)...])
                guard !line.isEmpty, let decoded = try? decoder.decode(LogLine.self, from: line) else { continue }
                onLine(decoded)
            }
        }
    }
}

/// A request body sent in 64 KiB chunks, reporting progress as each chunk goes out.
struct ProgressChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let data: Data
    let progress: (@Sendable (Int, Int) -> Void)?

    struct AsyncIterator: AsyncIteratorProtocol {
        let data: Data
        let progress: (@Sendable (Int, Int) -> Void)?
        var offset = 0
        mutating func next() async throws -> ByteBuffer? {
            guard offset < data.count else { return nil }
            let end = Swift.min(offset + 65536, data.count)
            let chunk = ByteBuffer(data: data[data.startIndex + offset..<data.startIndex + end])
            offset = end
            progress?(offset, data.count)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(data: data, progress: progress) }
}
