import Foundation
import PlatformModels
import PostgresStore

/// Paging, ordering, filters and label selectors of a list endpoint, and the SQL they turn into.
struct ListQuery: Sendable {
    var page = 1
    var perPage = 50
    /// SQL column and direction, from the endpoint's allow-list only.
    var orderColumn: String
    var descending = false
    var parameters: QueryParameters
    var labelSelector: [LabelRequirement] = []

    static let commonParameters: Set<String> = ["page", "per_page", "order_by", "label_selector"]

    /// Parses the query; `filters` are the endpoint's filter names, `orderable` maps API names to SQL columns.
    init(_ parameters: QueryParameters, filters: Set<String>, orderable: [String: String], defaultOrder: String = "created_at",
         labels: Bool = true) throws {
        var allowed = Self.commonParameters.union(filters)
        if !labels { allowed.remove("label_selector") }
        try parameters.requireOnly(allowed)
        self.parameters = parameters
        page = try parameters.int("page", range: 1...1_000_000) ?? 1
        perPage = try parameters.int("per_page", range: 1...5000) ?? 50
        guard let defaultColumn = orderable[defaultOrder] else { preconditionFailure("default order not orderable") }
        orderColumn = defaultColumn
        if let order = parameters["order_by"] {
            let desc = order.hasPrefix("-")
            let name = desc || order.hasPrefix("+") ? String(order.dropFirst()) : order
            guard let column = orderable[name] else {
                throw APIError.badQuery("Order by can only be: " + orderable.keys.sorted().map { "'\($0)'" }.joined(separator: ", "))
            }
            orderColumn = column
            descending = desc
        }
        if let selector = parameters["label_selector"] {
            labelSelector = try LabelRequirement.parse(selector)
        }
    }

    /// Validates GUID filters so a malformed one is 400 rather than a database error.
    func guids(_ name: String) throws -> [String]? {
        guard let items = try parameters.list(name) else { return nil }
        for item in items where UUID(uuidString: item) == nil {
            throw APIError.badQuery("\(name) must be a list of GUIDs; '\(item.prefix(64))' is not one")
        }
        return items.map { $0.lowercased() }
    }

    var offset: Int { (page - 1) * perPage }

    /// ORDER BY with a stable tie-break on the serial id.
    func orderSQL(table: String) -> String {
        "ORDER BY \(table).\(orderColumn) \(descending ? "DESC" : "ASC"), \(table).id \(descending ? "DESC" : "ASC")"
    }

    /// Adds the label selector's requirements against `column` (a jsonb of labels).
    func applyLabels(to sql: inout SQLFilter, column: String) {
        for requirement in labelSelector {
            requirement.apply(to: &sql, column: column)
        }
    }

    /// The pagination object with absolute links keeping every filter and per_page.
    func pagination(total: Int, baseURL: String, path: String) -> Pagination {
        let totalPages = max(1, (total + perPage - 1) / perPage)
        func link(_ page: Int) -> Link {
            var items = parameters.values.filter { $0.key != "page" && $0.key != "per_page" }
                .map { "\(QueryParameters.encode($0.key))=\(QueryParameters.encode($0.value))" }
            items.sort()
            items.insert("page=\(page)", at: 0)
            items.insert("per_page=\(perPage)", at: 1)
            return Link(href: baseURL + path + "?" + items.joined(separator: "&"))
        }
        return Pagination(
            totalResults: total, totalPages: totalPages, first: link(1), last: link(totalPages),
            next: page < totalPages ? link(page + 1) : nil,
            previous: page > 1 ? link(min(page - 1, totalPages)) : nil)
    }
}

/// WHERE clauses with their bound parameters; values are always bound, never interpolated.
struct SQLFilter {
    private(set) var clauses: [String] = []
    private(set) var parameters: [(any PostgresBindable)?] = []

    init(parameters: [(any PostgresBindable)?] = []) {
        self.parameters = parameters
    }

    /// Binds a value and returns its placeholder.
    mutating func bind(_ value: (any PostgresBindable)?) -> String {
        parameters.append(value)
        return "$\(parameters.count)"
    }

    mutating func add(_ clause: String) {
        clauses.append(clause)
    }

    var whereSQL: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
}

/// One requirement of a `label_selector` (`k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`).
struct LabelRequirement: Sendable, Equatable {
    enum Operation: Sendable, Equatable { case exists, notExists, equals(String), notEquals(String), isIn([String]), notIn([String]) }
    var key: String
    var operation: Operation

    static func parse(_ selector: String) throws -> [LabelRequirement] {
        var result: [LabelRequirement] = []
        var parts: [String] = []
        var current = ""
        var depth = 0
        for ch in selector {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if ch == "," && depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(ch)
            }
        }
        parts.append(current)
        for raw in parts {
            let part = raw.trimmingCharacters(in: .whitespaces)
            guard !part.isEmpty else { throw APIError.badQuery("label_selector has an empty requirement") }
            result.append(try parseOne(part))
        }
        return result
    }

    private static func parseOne(_ part: String) throws -> LabelRequirement {
        func invalid() -> APIError { APIError.badQuery("Invalid label_selector value: '\(part.prefix(100))'") }
        if part.hasPrefix("!") {
            let key = String(part.dropFirst())
            try validateKey(key, part)
            return LabelRequirement(key: key, operation: .notExists)
        }
        for (token, isNot) in [(" notin ", true), (" in ", false)] {
            if let range = part.range(of: token) {
                let key = String(part[..<range.lowerBound]).trimmingCharacters(in: .whitespaces)
                var rest = String(part[range.upperBound...]).trimmingCharacters(in: .whitespaces)
                guard rest.hasPrefix("("), rest.hasSuffix(")") else { throw invalid() }
                rest = String(rest.dropFirst().dropLast())
                let values = rest.split(separator: ",", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                try validateKey(key, part)
                for v in values { try validateValue(v, part) }
                return LabelRequirement(key: key, operation: isNot ? .notIn(values) : .isIn(values))
            }
        }
        for (token, kind) in [("!=", 0), ("==", 1), ("=", 1)] {
            if let range = part.range(of: token) {
                let key = String(part[..<range.lowerBound])
                let value = String(part[range.upperBound...])
                try validateKey(key, part)
                try validateValue(value, part)
                return LabelRequirement(key: key, operation: kind == 0 ? .notEquals(value) : .equals(value))
            }
        }
        try validateKey(part, part)
        return LabelRequirement(key: part, operation: .exists)
    }

    static func validateKey(_ key: String, _ context: String) throws {
        let pieces = key.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(pieces.count) else { throw APIError.badQuery("Invalid label_selector key: '\(key.prefix(100))'") }
        if pieces.count == 2 {
            let prefix = pieces[0]
            guard !prefix.isEmpty, prefix.count <= 253,
                  prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
            else { throw APIError.badQuery("Invalid label_selector key prefix: '\(key.prefix(100))'") }
        }
        guard Labels.isValidName(String(pieces.last!)) else {  // split always yields at least one piece
            throw APIError.badQuery("Invalid label_selector key: '\(key.prefix(100))'")
        }
    }

    static func validateValue(_ value: String, _ context: String) throws {
        guard value.isEmpty || Labels.isValidName(value) else {
            throw APIError.badQuery("Invalid label_selector value: '\(value.prefix(100))'")
        }
    }

    func apply(to sql: inout SQLFilter, column: String) {
        let k = sql.bind(key)
        switch operation {
        case .exists: sql.add("jsonb_exists(\(column), \(k))")
        case .notExists: sql.add("NOT jsonb_exists(\(column), \(k))")
        case .equals(let v): sql.add("(\(column) ->> \(k)) = \(sql.bind(v))")
        case .notEquals(let v): sql.add("(\(column) ->> \(k)) IS DISTINCT FROM \(sql.bind(v))")
        case .isIn(let vs): sql.add("(\(column) ->> \(k)) = ANY(\(sql.bind(vs))::text[])")
        case .notIn(let vs): sql.add("((\(column) ->> \(k)) IS NULL OR NOT (\(column) ->> \(k)) = ANY(\(sql.bind(vs))::text[]))")
        }
    }
}

/// Label and annotation rules (CF: keys `[prefix/]name`, names of at most 63 characters of
/// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric).
enum Labels {
    static func isValidName(_ s: String) -> Bool {
        guard (1...63).contains(s.count), s.allSatisfy({ $0.isASCII }) else { return false }
        let chars = Array(s)
        func alnum(_ c: Character) -> Bool { c.isLetter || c.isNumber }
        guard alnum(chars.first!), alnum(chars.last!) else { return false }  // non-empty: checked above
        return chars.allSatisfy { alnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    /// Applies a metadata patch to stored metadata, validating every key and value (422 on a bad one).
    static func merge(_ stored: Metadata, _ patch: MetadataPatch?) throws -> Metadata {
        guard let patch else { return stored }
        var result = stored
        for (key, value) in patch.labels ?? [:] {
            do {
                try LabelRequirement.validateKey(key, key)
            } catch {
                throw APIError.unprocessable("Metadata label key error: '\(key.prefix(100))' is not a valid label key")
            }
            if let value {
                guard value.isEmpty || isValidName(value) else {
                    throw APIError.unprocessable("Metadata label value error: '\(value.prefix(100))' is not a valid label value")
                }
                result.labels[key] = value
            } else {
                result.labels.removeValue(forKey: key)
            }
        }
        for (key, value) in patch.annotations ?? [:] {
            guard !key.isEmpty, key.count <= 316 else {
                throw APIError.unprocessable("Metadata annotation key error: '\(key.prefix(100))' must be 1 to 316 characters")
            }
            if let value {
                guard value.utf8.count <= 5000 else {
                    throw APIError.unprocessable("Metadata annotation error: the value of '\(key)' is longer than 5000 characters")
                }
                result.annotations[key] = value
            } else {
                result.annotations.removeValue(forKey: key)
            }
        }
        if result.labels.count > 200 || result.annotations.count > 200 {
            throw APIError.unprocessable("Metadata error: at most 200 labels and 200 annotations")
        }
        return result
    }
}
