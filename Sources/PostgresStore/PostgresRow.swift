/// One result row, copied out of libpq as plain Swift strings.
public struct PostgresRow: Sendable {
    let columns: PostgresColumns
    let values: [String?]

    /// Creates a row by hand, e.g. for an in-memory test double.
    public init(columnNames: [String], values: [String?]) {
        precondition(columnNames.count == values.count, "one value per column")
        self.init(columns: PostgresColumns(names: columnNames), values: values)
    }

    init(columns: PostgresColumns, values: [String?]) {
        self.columns = columns
        self.values = values
    }

    /// The column names in result order.
    public var columnNames: [String] { columns.names }

    /// Whether the cell is SQL NULL; throws for an unknown column.
    public func isNull(_ column: String) throws -> Bool {
        values[try index(of: column)] == nil
    }

    /// Decodes a non-NULL cell; throws a `.decoding` error naming the column if it is NULL, unknown or malformed.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let text = values[try index(of: column)] else {
            throw PostgresError(kind: .decoding, message: "column \"\(column)\" is NULL, expected \(T.self)")
        }
        return try decodeText(text, column: column)
    }

    /// Decodes a cell that may be NULL.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T?.Type = T?.self) throws -> T? {
        guard let text = values[try index(of: column)] else { return nil }
        return try decodeText(text, column: column) as T
    }

    /// The raw text of a cell; `nil` for NULL or an unknown column.
    public subscript(column: String) -> String? {
        guard let index = columns.index[column] else { return nil }
        return values[index]
    }

    private func index(of column: String) throws -> Int {
        guard let index = columns.index[column] else {
            throw PostgresError(kind: .decoding, message: "no column \"\(column)\" in result (have: \(columnNames.joined(separator: ", ")))")
        }
        return index
    }

    private func decodeText<T: PostgresDecodable>(_ text: String, column: String) throws -> T {
        do {
            return try T(postgresText: text)
        } catch var error as PostgresError {
            error.message = "column \"\(column)\": \(error.message)"
            error.column = column
            throw error
        } catch {
            throw PostgresError(kind: .decoding, message: "column \"\(column)\": \(error)", column: column)
        }
    }
}

/// Column names shared by every row of one result, so rows do not each copy the lookup table.
final class PostgresColumns: Sendable {
    let names: [String]
    let index: [String: Int]

    init(names: [String]) {
        self.names = names
        var index: [String: Int] = [:]
        // The first of duplicate names wins, as in most drivers.
        for (position, name) in names.enumerated() where index[name] == nil {
            index[name] = position
        }
        self.index = index
    }
}
