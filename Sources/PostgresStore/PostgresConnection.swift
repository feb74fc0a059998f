import CLibPQ
import Foundation
import Logging

/// One checked-out connection, used synchronously inside a pool closure on a thread-pool thread.
///
/// Not `Sendable`: libpq connections must not be used from two threads at once, and the pool
/// hands each one to a single closure at a time.
public final class PostgresConnection {
    private let handle: OpaquePointer
    private let logger: Logger
    private let redactor: SecretRedactor
    /// Set when an error shows the session is gone, even if libpq has not noticed yet.
    private var markedBroken = false
    /// Statements that succeeded since the current lease began; the pool only retries a closure when this is 0.
    private(set) var succeededStatements = 0
    /// The first statement of the lease failed because the connection was already dead.
    private(set) var firstStatementFoundDead = false

    private init(handle: OpaquePointer, logger: Logger, redactor: SecretRedactor) {
        self.handle = handle
        self.logger = logger
        self.redactor = redactor
    }

    deinit {
        PQfinish(handle)
    }

    /// Opens a connection (blocking) with UTC time zone and ISO DateStyle, so timestamp text is predictable.
    static func connect(configuration: PostgresConfiguration, logger: Logger) throws -> PostgresConnection {
        let redactor = SecretRedactor(conninfo: configuration.conninfo)
        // Later keywords override what the expanded dbname (the conninfo) says, so our timeout wins.
        let keywords: [String?] = ["dbname", "connect_timeout", nil]
        let values: [String?] = [configuration.conninfo, String(max(configuration.connectTimeoutSeconds, 0)), nil]
        let pointer = withCStringArray(keywords) { keywords in
            withCStringArray(values) { values in PQconnectdbParams(keywords, values, 1) }
        }
        guard let pointer else {
            throw PostgresError(kind: .connection, message: "libpq could not allocate a connection")
        }
        let connection = PostgresConnection(handle: pointer, logger: logger, redactor: redactor)
        // libpq prints notices (e.g. "no transaction in progress") to stderr unless told otherwise.
        // Unretained is sound: the connection owns the handle, so it outlives every callback.
        PQsetNoticeProcessor(pointer, { context, message in
            guard let context, let message else { return }
            let connection = Unmanaged<PostgresConnection>.fromOpaque(context).takeUnretainedValue()
            let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
            connection.logger.debug("postgres notice", metadata: ["postgres.notice": "\(connection.redactor.redact(text))"])
        }, Unmanaged.passUnretained(connection).toOpaque())
        guard PQstatus(pointer) == CONNECTION_OK else {
            throw PostgresError(kind: .connection, message: connection.libpqMessage())
        }
        try connection.execute("SET TIME ZONE 'UTC'; SET DateStyle TO ISO")
        connection.beginLease()
        logger.debug("postgres connection opened", metadata: ["postgres.backend_pid": "\(PQbackendPID(pointer))"])
        return connection
    }

    /// Runs one statement with `$1`, `$2`... bound to `parameters` (text format; `nil` is NULL).
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) throws -> PostgresResult {
        let texts: [String?] = parameters.map { $0?.postgresText }
        guard texts.count <= Int(Int32.max) else {
            throw PostgresError(kind: .usage, message: "too many parameters")
        }
        let result = Self.withCStringArray(texts) { values in
            PQexecParams(handle, sql, Int32(texts.count), nil, values, nil, nil, 0)
        }
        return try check(result)
    }

    /// Runs one or more `;`-separated statements without parameters (simple query protocol), e.g. a migration.
    public func execute(_ sql: String) throws {
        try check(PQexec(handle, sql))
    }

    // MARK: Pool bookkeeping

    /// True when the connection must not go back to the pool.
    var isBroken: Bool { markedBroken || PQstatus(handle) != CONNECTION_OK }

    /// Starts counting statements for the retry rule.
    func beginLease() {
        succeededStatements = 0
        firstStatementFoundDead = false
    }

    /// Leaves the session outside any transaction; false if it cannot be reused.
    func resetForReuse() -> Bool {
        if isBroken { return false }
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE:
            return true
        case PQTRANS_INTRANS, PQTRANS_INERROR:
            // The closure left a transaction open; never let it leak into the next lease.
            _ = try? query("ROLLBACK")
            return !isBroken && PQtransactionStatus(handle) == PQTRANS_IDLE
        default:
            return false
        }
    }

    // MARK: LISTEN support

    /// The socket to `poll()` for notifications.
    var socket: Int32 { PQsocket(handle) }

    /// Reads whatever the server sent; false when the connection is gone.
    func consumeInput() -> Bool {
        PQconsumeInput(handle) == 1 && PQstatus(handle) == CONNECTION_OK
    }

    /// Takes every notification libpq has buffered.
    func drainNotifications() -> [(channel: String, payload: String)] {
        var notifications: [(channel: String, payload: String)] = []
        while let notify = PQnotifies(handle) {
            let channel = notify.pointee.relname.map { String(cString: $0) } ?? ""
            let payload = notify.pointee.extra.map { String(cString: $0) } ?? ""
            PQfreemem(notify)
            notifications.append((channel, payload))
        }
        return notifications
    }

    // MARK: C calls

    /// Turns a `PGresult` into rows or a `PostgresError`, always freeing it.
    @discardableResult
    private func check(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else {
            throw failure(nil)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            succeededStatements += 1
            return Self.copy(result)
        case PGRES_BAD_RESPONSE, PGRES_NONFATAL_ERROR, PGRES_FATAL_ERROR:
            throw failure(result)
        default:
            // COPY and pipeline modes would leave the session mid-protocol.
            markedBroken = true
            throw PostgresError(kind: .usage, message: "unsupported result status \(String(cString: PQresStatus(PQresultStatus(result))))")
        }
    }

    private func failure(_ result: OpaquePointer?) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let result, let ascii = code.asciiValue, let value = PQresultErrorField(result, Int32(ascii)) else { return nil }
            return redactor.redact(String(cString: value))
        }
        let connectionLost = PQstatus(handle) != CONNECTION_OK
        var error = PostgresError(
            kind: connectionLost ? .connection : .server,
            message: field("M") ?? libpqMessage(),
            sqlState: field("C"),
            detail: field("D"),
            constraint: field("n"),
            column: field("c"),
            table: field("t")
        )
        if error.isConnectionError {
            error.kind = .connection
            markedBroken = true
            if succeededStatements == 0 { firstStatementFoundDead = true }
        }
        logger.debug("postgres statement failed", metadata: [
            "postgres.sqlstate": "\(error.sqlState ?? "-")",
            "postgres.error_kind": "\(error.kind)",
        ])
        return error
    }

    private func libpqMessage() -> String {
        guard let message = PQerrorMessage(handle) else { return "unknown libpq error" }
        let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
        return redactor.redact(text.isEmpty ? "unknown libpq error" : text)
    }

    private static func copy(_ result: OpaquePointer) -> PostgresResult {
        let fieldCount = PQnfields(result)
        let rowCount = PQntuples(result)
        let columns = PostgresColumns(names: (0..<fieldCount).map { String(cString: PQfname(result, $0)) })
        var rows: [PostgresRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            let values: [String?] = (0..<fieldCount).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            }
            rows.append(PostgresRow(columns: columns, values: values))
        }
        let affected = PQcmdTuples(result).flatMap { Int(String(cString: $0)) } ?? 0
        return PostgresResult(rows: rows, affectedRows: affected)
    }

    /// Passes a NULL-terminated-or-not array of C strings that lives only for the call.
    private static func withCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        let pointers: [UnsafePointer<CChar>?] = strings.map { string in string.flatMap { strdup($0) }.map { UnsafePointer($0) } }
        defer { for pointer in pointers { free(UnsafeMutablePointer(mutating: pointer)) } }
        return pointers.withUnsafeBufferPointer { buffer in
            // An empty array may have a nil base address, which libpq accepts only when the count is 0.
            guard let base = buffer.baseAddress else {
                var none: UnsafePointer<CChar>? = nil
                return withUnsafePointer(to: &none) { body($0) }
            }
            return body(base)
        }
    }
}
