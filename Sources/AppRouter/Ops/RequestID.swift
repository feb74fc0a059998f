import NIOCore

/// A request id: 128 bits printed as a version-4 UUID (`X-Vcap-Request-Id` is a UUID in CF).
struct RequestID: Sendable, Equatable {
    var high: UInt64
    var low: UInt64

    static let textLength = 36

    /// Writes the UUID text (36 bytes) without allocating.
    @inline(__always)
    func write(into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.textLength) { out in
            if let base = out.baseAddress { write(to: base) }
            return Self.textLength
        }
    }

    /// Writes the UUID text into 36 bytes at `out`.
    @inline(__always)
    func write(to out: UnsafeMutableRawPointer) {
        let high = (self.high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        let low = (self.low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        @inline(__always) func hex(_ v: UInt64) -> UInt8 {
            let d = UInt8(truncatingIfNeeded: v & 0xF)
            return d < 10 ? d + 0x30 : d + 0x57
        }
        var o = 0
        for nibble in 0..<16 {
            if nibble == 8 || nibble == 12 { out.storeBytes(of: UInt8(ascii: "-"), toByteOffset: o, as: UInt8.self); o += 1 }
            out.storeBytes(of: hex(high >> UInt64(60 - nibble * 4)), toByteOffset: o, as: UInt8.self)
            o += 1
        }
        for nibble in 0..<16 {
            if nibble == 0 || nibble == 4 { out.storeBytes(of: UInt8(ascii: "-"), toByteOffset: o, as: UInt8.self); o += 1 }
            out.storeBytes(of: hex(low >> UInt64(60 - nibble * 4)), toByteOffset: o, as: UInt8.self)
            o += 1
        }
    }
}

/// SplitMix64 seeded from the system's generator: request ids must be unique, not secret, and
/// one `getrandom` call per request would be a system call on the hot path.
struct RequestIDGenerator: Sendable {
    private var state: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    @inline(__always)
    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    mutating func make() -> RequestID {
        RequestID(high: next(), low: next())
    }
}
