/// Resource limits for one fetch (C6): a hostile repository or server must fail cleanly.
public struct FetchLimits: Sendable, Hashable {
    /// Wall-clock budget for the whole fetch.
    ///
    /// Checked whenever libgit2 calls back (transfer progress, sideband messages, credential
    /// and certificate checks) and between steps. libgit2 1.5.1 has no socket timeout option,
    /// so a server that accepts the connection and then sends nothing at all is not cut off
    /// by this limit; the caller's egress policy / watchdog must cover that case.
    public var timeout: Duration
    /// Maximum bytes received from the remote (pack data plus sideband messages).
    public var maxReceivedBytes: Int
    /// Maximum total size of the files written by the checkout.
    public var maxCheckoutBytes: Int
    /// Maximum number of files (blobs and symlinks) written by the checkout.
    public var maxCheckoutFiles: Int

    /// Creates limits; the defaults suit buildpacks (5 minutes, 512 MiB, 1 GiB, 100 000 files).
    public init(
        timeout: Duration = .seconds(300),
        maxReceivedBytes: Int = 512 << 20,
        maxCheckoutBytes: Int = 1 << 30,
        maxCheckoutFiles: Int = 100_000
    ) {
        self.timeout = timeout
        self.maxReceivedBytes = maxReceivedBytes
        self.maxCheckoutBytes = maxCheckoutBytes
        self.maxCheckoutFiles = maxCheckoutFiles
    }
}
