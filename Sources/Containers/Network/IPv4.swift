/// An IPv4 address as a 32-bit number, parsed strictly from dotted-quad text.
struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    var value: UInt32

    init(_ value: UInt32) {
        self.value = value
    }

    /// Parses `a.b.c.d` with four decimal octets; leading zeros are refused because some tools
    /// read them as octal.
    init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || !part.hasPrefix("0"), let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        self.value = value
    }

    var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}

/// An IPv4 network (address and prefix length).
struct IPv4Network: Hashable, Sendable, CustomStringConvertible {
    /// The first address (host bits zero).
    var address: IPv4Address
    var prefixLength: Int

    init(address: IPv4Address, prefixLength: Int) {
        self.prefixLength = prefixLength
        self.address = IPv4Address(address.value & Self.mask(prefixLength))
    }

    /// Parses `a.b.c.d/n`, or a bare address as `/32`. With `strict`, host bits must be zero
    /// (`10.0.0.1/24` is refused: it usually means a typo).
    init?(_ text: some StringProtocol, strict: Bool = true) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let address = IPv4Address(parts[0]) else { return nil }
        var length = 32
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].count <= 2, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                let parsed = Int(parts[1]), (0...32).contains(parsed)
            else { return nil }
            length = parsed
        }
        if strict, address.value & ~Self.mask(length) != 0 { return nil }
        self.init(address: address, prefixLength: length)
    }

    static func mask(_ prefixLength: Int) -> UInt32 {
        prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength)
    }

    var mask: UInt32 { Self.mask(prefixLength) }

    /// The last address of the network.
    var lastAddress: IPv4Address { IPv4Address(address.value | ~mask) }

    /// Number of addresses in the network.
    var size: UInt64 { UInt64(1) << UInt64(32 - prefixLength) }

    func contains(_ other: IPv4Address) -> Bool {
        other.value & mask == address.value
    }

    /// Whether the two networks share at least one address.
    func overlaps(_ other: IPv4Network) -> Bool {
        let shorter = min(prefixLength, other.prefixLength)
        let m = Self.mask(shorter)
        return address.value & m == other.address.value & m
    }

    var description: String { "\(address)/\(prefixLength)" }
}
