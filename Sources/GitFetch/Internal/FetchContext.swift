import CLibGit2
import Foundation

/// State shared with libgit2's C callbacks for one fetch: limits, credentials, the SSH host
/// key pins and the first Swift error a callback raised.
///
/// Passed to C as an unretained payload pointer; `withCallbacks` keeps it alive for the
/// duration of the C call.
final class FetchContext {
    let url: GitURL
    let limits: FetchLimits
    let policy: GitURLPolicy
    let deadline: ContinuousClock.Instant
    /// The first error raised inside a callback; reported instead of libgit2's generic
    /// "user cancelled" so the caller learns which limit was hit.
    private(set) var failure: GitError?
    private var packBytes = 0
    private var sidebandBytes = 0
    /// Credential types already offered (`git_credential_t` raw values).
    private var offeredCredentials: Set<UInt32> = []

    init(url: GitURL, limits: FetchLimits, policy: GitURLPolicy) {
        self.url = url
        self.limits = limits
        self.policy = policy
        self.deadline = ContinuousClock.now.advanced(by: limits.timeout)
    }

    /// Bytes received so far (pack plus sideband).
    var receivedBytes: Int { packBytes + sidebandBytes }

    /// Throws once the wall-clock budget is spent.
    func checkDeadline() throws {
        if ContinuousClock.now >= deadline {
            throw GitError(.limitExceeded, "fetching \(url.redacted) exceeded the time limit of \(limits.timeout)")
        }
    }

    private func checkBytes() throws {
        if receivedBytes > limits.maxReceivedBytes {
            throw GitError(.limitExceeded, "fetching \(url.redacted) exceeded the received-bytes limit of \(limits.maxReceivedBytes) bytes")
        }
    }

    /// Runs a libgit2 call; if it failed because a callback aborted, throws the callback's
    /// error, otherwise libgit2's own.
    func run(_ operation: @autoclosure () -> String, kind: GitError.Kind = .library, _ call: () -> Int32) throws {
        let rc = call()
        if let failure { throw failure }
        try LibGit2.check(rc, operation(), kind: kind)
        try checkDeadline()
    }

    /// Bridges a Swift error out of a C callback: remember it, tell libgit2 to stop.
    private func catching(_ body: () throws -> Int32) -> Int32 {
        do {
            return try body()
        } catch let error as GitError {
            if failure == nil { failure = error }
            return GIT_EUSER.rawValue
        } catch {
            if failure == nil { failure = GitError(.other, "callback failed") }
            return GIT_EUSER.rawValue
        }
    }

    /// Remote callbacks wired to this context. The payload is unretained: callers must keep
    /// the context alive while libgit2 may call back (they hold it for the whole fetch).
    func callbacks() throws -> git_remote_callbacks {
        var callbacks = git_remote_callbacks()
        try LibGit2.check(git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION)), "remote callbacks")
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        callbacks.transfer_progress = { stats, payload in
            guard let stats, let context = FetchContext.from(payload) else { return 0 }
            return context.catching {
                context.packBytes = Int(stats.pointee.received_bytes)
                try context.checkBytes()
                try context.checkDeadline()
                return 0
            }
        }
        callbacks.sideband_progress = { _, length, payload in
            guard let context = FetchContext.from(payload) else { return 0 }
            return context.catching {
                // An endless stream of "progress" text is as much a resource attack as a big pack.
                context.sidebandBytes += Int(max(length, 0))
                try context.checkBytes()
                try context.checkDeadline()
                return 0
            }
        }
        callbacks.credentials = { out, _, usernameFromURL, allowedTypes, payload in
            guard let out, let context = FetchContext.from(payload) else { return GIT_EUSER.rawValue }
            return context.catching {
                try context.acquireCredential(out, usernameFromURL: usernameFromURL.map { String(cString: $0) }, allowedTypes: allowedTypes)
            }
        }
        callbacks.certificate_check = { cert, valid, host, payload in
            guard let context = FetchContext.from(payload) else { return GIT_EUSER.rawValue }
            return context.catching {
                try context.checkCertificate(cert, valid: valid != 0, host: host.map { String(cString: $0) } ?? "")
            }
        }
        return callbacks
    }

    private static func from(_ payload: UnsafeMutableRawPointer?) -> FetchContext? {
        payload.map { Unmanaged<FetchContext>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Supplies each kind of credential once: libgit2 asks again when the server rejected
    /// it, and answering again would loop forever.
    private func acquireCredential(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>, usernameFromURL: String?, allowedTypes: UInt32) throws -> Int32 {
        try checkDeadline()
        func once(_ type: git_credential_t, _ make: () -> Int32) throws -> Int32 {
            guard !offeredCredentials.contains(type.rawValue) else {
                throw GitError(.authentication, "authentication to \(url.redacted) failed")
            }
            offeredCredentials.insert(type.rawValue)
            return make()
        }
        let user = url.userName ?? usernameFromURL ?? "git"
        if allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, url.scheme != .ssh {
            guard url.hasCredentials else {
                throw GitError(.authentication, "\(url.redacted) requires authentication and the URL carries no credentials")
            }
            return try once(GIT_CREDENTIAL_USERPASS_PLAINTEXT) { git_credential_userpass_plaintext_new(out, user, url.password ?? "") }
        }
        if allowedTypes & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
            return try once(GIT_CREDENTIAL_USERNAME) { git_credential_username_new(out, user) }
        }
        if allowedTypes & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 {
            return try once(GIT_CREDENTIAL_SSH_KEY) { git_credential_ssh_key_from_agent(out, user) }
        }
        throw GitError(.authentication, "\(url.redacted) asks for an authentication method this fetcher does not support")
    }

    /// TLS: keep libgit2's verdict. SSH: accept only a pinned SHA-256 host-key fingerprint (C2),
    /// since libgit2 before 1.5.1 did not check host keys at all (CVE-2023-22742).
    private func checkCertificate(_ cert: UnsafeMutablePointer<git_cert>?, valid: Bool, host: String) throws -> Int32 {
        try checkDeadline()
        guard let cert, cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else {
            return GIT_PASSTHROUGH.rawValue
        }
        let hostKey = UnsafeRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
        let pins = policy.sshHostKeyFingerprints[host.lowercased()]
            ?? url.host.flatMap { policy.sshHostKeyFingerprints[$0] } ?? []
        guard hostKey.type.rawValue & GIT_CERT_SSH_SHA256.rawValue != 0 else {
            throw GitError(.authentication, "ssh host \(host) offered no SHA-256 host key fingerprint")
        }
        var digest = hostKey.hash_sha256
        let fingerprint = withUnsafeBytes(of: &digest) { bytes in
            "SHA256:" + Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
        }
        guard pins.contains(fingerprint) else {
            throw GitError(.authentication, "ssh host key of \(host) (\(fingerprint)) is not pinned in the URL policy")
        }
        return 0
    }
}
