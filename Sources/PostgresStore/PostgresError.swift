/// Error carrying SQLSTATE and the server's message.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// Which layer failed.
    public enum Kind: Sendable, Equatable {
        case connection, server, decoding, poolClosed, timeout, usage
    }

    /// Which layer failed.
    public var kind: Kind
    /// The five-character SQLSTATE, when the server sent one (e.g. "23505").
    public var sqlState: String?
    /// The server's primary message or libpq's message.
    public var message: String
    /// The server's DETAIL line, if any.
    public var detail: String?
    /// The violated constraint's name (`PG_DIAG_CONSTRAINT_NAME`).
    public var constraint: String?
    /// The column involved (`PG_DIAG_COLUMN_NAME`).
    public var column: String?
    /// The table involved (`PG_DIAG_TABLE_NAME`).
    public var table: String?

    /// Creates an error; libpq failures are built inside this module.
    public init(
        kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil,
        constraint: String? = nil, column: String? = nil, table: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.constraint = constraint
        self.column = column
        self.table = table
    }

    /// True for SQLSTATE 23505 (unique_violation).
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// True for SQLSTATE 23503 (foreign_key_violation).
    public var isForeignKeyViolation: Bool { sqlState == "23503" }
    /// True when the connection, not the statement, failed (so a retry on a new connection may work).
    public var isConnectionError: Bool {
        if kind == .connection { return true }
        guard let sqlState else { return false }
        // Class 08 is connection exception; 57P01-03 are the server shutting down or starting up.
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }

    /// Reads "kind: message (SQLSTATE xxxxx)".
    public var description: String {
        var text = "\(kind): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        return text
    }
}
