/// The rows and affected-row count of one statement.
public struct PostgresResult: Sendable, RandomAccessCollection {
    /// The rows, in order.
    public var rows: [PostgresRow]
    /// The count from `PQcmdTuples` (rows inserted, updated, deleted, selected...), 0 when none.
    public var affectedRows: Int

    /// Creates a result by hand, e.g. for an in-memory test double.
    public init(rows: [PostgresRow] = [], affectedRows: Int = 0) {
        self.rows = rows
        self.affectedRows = affectedRows
    }

    public var startIndex: Int { rows.startIndex }
    public var endIndex: Int { rows.endIndex }
    public subscript(position: Int) -> PostgresRow { rows[position] }
}
