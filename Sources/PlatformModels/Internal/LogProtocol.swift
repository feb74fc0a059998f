/// One line of an app's log (CF's envelope, reduced to what the CLI shows).
///
/// `source_type` is `APP/PROC/WEB`, `STG`, `API`, `CELL` or `RTR`; `source_instance` is the
/// instance index as text; `message_type` is `OUT` or `ERR`. `message` is one line (output is
/// split at newlines) of at most 64 KiB without control characters or escape sequences
/// (``UntrustedText/Field/logMessage``): whoever ships a line cleans it, and the controller
/// cleans it again as it stores it.
public struct LogLine: Codable, Sendable, Equatable {
    public enum Stream: String, Codable, Sendable, Equatable { case out = "OUT", err = "ERR" }
    public var appGUID: String
    /// Unix nanoseconds.
    public var timestamp: Int64
    public var sourceType: String
    public var sourceInstance: String
    public var messageType: Stream
    public var message: String

    enum CodingKeys: String, CodingKey {
        case appGUID = "app_guid", timestamp, sourceType = "source_type", sourceInstance = "source_instance",
             messageType = "message_type", message
    }

    public init(appGUID: String, timestamp: Int64, sourceType: String, sourceInstance: String,
                messageType: Stream, message: String) {
        self.appGUID = appGUID
        self.timestamp = timestamp
        self.sourceType = sourceType
        self.sourceInstance = sourceInstance
        self.messageType = messageType
        self.message = message
    }
}

/// `POST /internal/v1/logs` (from agents and stagers).
public struct LogBatch: Codable, Sendable, Equatable {
    public var lines: [LogLine]
    public init(lines: [LogLine]) { self.lines = lines }
}

/// `GET /v3/apps/:guid/logs?recent` (and each chunk of `?follow`): lines oldest first.
/// `next_cursor` is passed back as `after=` to get only newer lines.
public struct AppLogPage: Codable, Sendable, Equatable {
    public var lines: [LogLine]
    public var nextCursor: Int64

    enum CodingKeys: String, CodingKey { case lines, nextCursor = "next_cursor" }

    public init(lines: [LogLine], nextCursor: Int64) {
        self.lines = lines
        self.nextCursor = nextCursor
    }
}
