import Foundation
import Logging
import PlatformModels

/// One item of a batch body, decoded on its own: an item that does not decode (a field of the
/// wrong type, an unknown enum value from a newer component) is refused alone, by its index,
/// instead of failing the whole batch (BatchProtocol.swift).
struct BatchItem<Item: Decodable>: Decodable {
    let decoded: Result<Item, DecodingError>
    /// The item as plain JSON when it did not decode, so a caller can still tell what it was
    /// about (which instance a report names).
    let raw: JSONValue?

    init(from decoder: any Decoder) throws {
        do {
            decoded = .success(try Item(from: decoder))
            raw = nil
        } catch let error as DecodingError {
            decoded = .failure(error)
            raw = try? JSONValue(from: decoder)
        }
    }

    /// A string member of the item, whether it decoded or not.
    func string(_ key: String, _ decodedValue: (Item) -> String) -> String? {
        if case .success(let item) = decoded { return decodedValue(item) }
        if case .string(let value)? = raw?.objectValue?[key] { return value }
        return nil
    }
}

/// A batch's items split into those to apply, validated (and cleaned) by the caller's rule,
/// and those refused with the reason.
struct BatchSort<Item> {
    private(set) var accepted: [(index: Int, item: Item)] = []
    private(set) var rejected: [BatchRejection] = []

    /// `validate` gets each decoded item with its index and returns it ready to store, or
    /// throws an ``APIError`` naming the field, which refuses that item only.
    init<Raw>(_ items: [BatchItem<Raw>], validate: (Raw, Int) throws -> Item) rethrows {
        for (index, item) in items.enumerated() {
            switch item.decoded {
            case .failure(let error):
                rejected.append(BatchRejection(index: index, reason: JSONBody.describe(error)))
            case .success(let raw):
                do {
                    accepted.append((index, try validate(raw, index)))
                } catch let error as APIError {
                    rejected.append(BatchRejection(index: index, reason: error.detail))
                }
            }
        }
    }

    var items: [Item] { accepted.map(\.item) }

    /// Refuses accepted items `refuse` picks (rules across items, such as duplicates).
    mutating func reject(where refuse: (_ index: Int, _ item: Item) -> String?) {
        var kept: [(index: Int, item: Item)] = []
        for entry in accepted {
            if let reason = refuse(entry.index, entry.item) {
                rejected.append(BatchRejection(index: entry.index, reason: reason))
            } else {
                kept.append(entry)
            }
        }
        accepted = kept
        rejected.sort { $0.index < $1.index }
    }

    /// Most rejections logged for one request; a batch of thousands of bad items must not
    /// flood the log every few seconds.
    static var maxLogged: Int { 20 }

    /// Logs each rejection once, where it is handled (here), up to ``maxLogged`` per request.
    func log(_ logger: Logger, batch: String, metadata: Logger.Metadata = [:]) {
        for rejection in rejected.prefix(Self.maxLogged) {
            logger.warning("batch item rejected", metadata: metadata.merging([
                "batch": .string(batch), "item.index": "\(rejection.index)", "reason": .string(rejection.reason),
            ]) { $1 })
        }
        if rejected.count > Self.maxLogged {
            logger.warning("batch items rejected (not all logged)", metadata: metadata.merging([
                "batch": .string(batch), "rejected": "\(rejected.count)", "logged": "\(Self.maxLogged)",
            ]) { $1 })
        }
    }
}
