extension Array where Element == UInt8 {
    /// Calls `body` with these bytes as a NUL-terminated C string.
    func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try (self + [0]).withUnsafeBufferPointer { buffer in
            // Non-empty: the buffer holds at least the terminating NUL.
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }
}
