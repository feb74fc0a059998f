import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-thread HTTP server on 127.0.0.1 that answers every request with a fixed response and
/// records the request heads, for testing what libgit2 sends and how errors read.
final class FakeHTTPServer: @unchecked Sendable {
    let port: Int
    private let socketFD: Int32
    private let response: String
    private let lock = NSLock()
    private var heads: [String] = []

    /// Request heads received so far.
    var requests: [String] { lock.withLock { heads } }

    init(response: String) throws {
        self.response = response
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError(message: "socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw FixtureError(message: "bind/listen failed") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socketFD = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        // The thread holds the server until `stop()` ends the accept loop.
        Thread { [self] in self.serveLoop() }.start()
    }

    /// Stops accepting: accept() fails once the socket is shut down. Must be called.
    func stop() {
        shutdown(socketFD, Int32(SHUT_RDWR))
        close(socketFD)
    }

    private func serveLoop() {
        while true {
            let client = accept(socketFD, nil, nil)
            guard client >= 0 else { return }
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !String(decoding: data, as: UTF8.self).contains("\r\n\r\n") {
                let count = read(client, &buffer, buffer.count)
                guard count > 0 else { break }
                data += buffer[0..<count]
            }
            lock.withLock { heads.append(String(decoding: data, as: UTF8.self)) }
            let bytes = Array(response.utf8)
            _ = write(client, bytes, bytes.count)
            close(client)
        }
    }
}
