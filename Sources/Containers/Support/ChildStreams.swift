#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A child's three standard streams: the descriptors it is given, and the capture files read
/// back once it is done.
///
/// A captured stream is an unlinked temporary file: the child gets a duplicate of its
/// descriptor and this object keeps the original, so whatever inherits the child's stdio
/// (a daemonised grandchild too) can write on without anyone waiting for it to close.
final class ChildStreams: Sendable {
    /// The captured output streams.
    enum Stream: Sendable {
        case stdout
        case stderr
    }

    /// Descriptors for the child's stdin, stdout and stderr; whoever starts the child closes them.
    struct Descriptors: Sendable {
        let stdin: Int32
        let stdout: Int32
        let stderr: Int32

        func close() {
            for fd in [stdin, stdout, stderr] { _ = Glibc.close(fd) }
        }
    }

    /// What the child is to be given.
    let child: Descriptors
    private let stdoutCapture: Int32?
    private let stderrCapture: Int32?

    init(stdin: StdioTarget, stdout: StdioTarget, stderr: StdioTarget) throws {
        var opened: [Int32] = []
        do {
            let input = try Self.open(stdin, reading: true, opened: &opened)
            let output = try Self.open(stdout, reading: false, opened: &opened)
            let error = try Self.open(stderr, reading: false, opened: &opened)
            child = Descriptors(stdin: input.child, stdout: output.child, stderr: error.child)
            stdoutCapture = output.capture
            stderrCapture = error.capture
        } catch {
            for fd in opened { _ = close(fd) }
            throw error
        }
    }

    deinit {
        if let stdoutCapture { _ = close(stdoutCapture) }
        if let stderrCapture { _ = close(stderrCapture) }
    }

    /// Everything captured on `stream` (empty unless it was `.capture`).
    func captured(_ stream: Stream) -> Data {
        guard let fd = capture(stream) else { return Data() }
        return Self.read(fd, from: 0)
    }

    /// The last ``CommandRunner/stderrTailBytes`` captured on `stream`.
    func tail(of stream: Stream) -> Data {
        guard let fd = capture(stream) else { return Data() }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return Data() }
        return Self.read(fd, from: max(0, info.st_size - off_t(CommandRunner.stderrTailBytes)))
    }

    private func capture(_ stream: Stream) -> Int32? {
        switch stream {
        case .stdout: stdoutCapture
        case .stderr: stderrCapture
        }
    }

    /// Reads from `offset` to the end with pread, so the offset the child shares is not moved.
    private static func read(_ fd: Int32, from offset: off_t) -> Data {
        var data = Data()
        var position = offset
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, position) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return data }
            data.append(contentsOf: buffer[0..<count])
            position += off_t(count)
        }
    }

    /// Opens `target` for the child; a capture also yields the descriptor kept here. Every
    /// descriptor opened is appended to `opened`, so a failure later can close it.
    private static func open(_ target: StdioTarget, reading: Bool, opened: inout [Int32]) throws -> (child: Int32, capture: Int32?) {
        switch target {
        case .null:
            let fd = Glibc.open("/dev/null", (reading ? O_RDONLY : O_WRONLY) | O_CLOEXEC)
            guard fd >= 0 else { throw ContainerError.systemCall("open", "/dev/null", errno: errno) }
            opened.append(fd)
            return (fd, nil)
        case .file(let path):
            let flags = reading ? O_RDONLY : O_WRONLY | O_CREAT | O_APPEND
            let fd = Glibc.open(path, flags | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw ContainerError.systemCall("open", path, errno: errno) }
            opened.append(fd)
            return (fd, nil)
        case .capture:
            let kept = try anonymousFile()
            opened.append(kept)
            // As stdin, an empty file is an immediate end of input, and nothing is read back.
            if reading { return (kept, nil) }
            let given = fcntl(kept, F_DUPFD_CLOEXEC, 0)
            guard given >= 0 else { throw ContainerError.systemCall("fcntl", "F_DUPFD_CLOEXEC", errno: errno) }
            opened.append(given)
            return (given, kept)
        }
    }

    /// A read-write file whose name is unlinked at once, so nothing is left behind.
    private static func anonymousFile() throws -> Int32 {
        let directory = FileManager.default.temporaryDirectory.path
        var template = Array("\(directory)/cf-like-capture-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer in
            // The buffer is a non-empty NUL-terminated array, so baseAddress is non-nil.
            mkstemp(buffer.baseAddress!)
        }
        guard fd >= 0 else { throw ContainerError.systemCall("mkstemp", directory, errno: errno) }
        template.withUnsafeBufferPointer { buffer in _ = unlink(buffer.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }
}
