import Crypto
import Foundation

/// File work on a package's scratch tree (the uploaded archive extracted by the safe extractor):
/// placing pooled files into it and finding the files the resource pool should hold.
///
/// Nothing here follows a symlink: parents are opened one component at a time with
/// `O_NOFOLLOW`, files are created with `O_EXCL | O_NOFOLLOW`. All functions block on file I/O:
/// callers run them on the thread pool.
enum PackageTree {
    /// A pooled file whose blob is missing, corrupt or of the wrong size; the caller drops the
    /// entry and reports the resource as not held.
    struct Unavailable: Error {
        let resource: PoolResource
    }

    /// A regular file of the tree the pool may hold.
    struct Candidate: Sendable {
        let key: PoolResource.Key
        let sha256: String
        /// Relative to the tree's root.
        let path: String
    }

    /// The 422 for a resource path the tree refuses.
    static func refused(_ path: String, _ reason: String) -> APIError {
        APIError.appBitsInvalid("resource '\(path)' \(reason)")
    }

    /// Writes every resource at its (already normalised) path under `root` with the bytes of
    /// its pooled blob and its masked mode. Missing parents are created (0755); a parent that
    /// is a symlink or a file, or a path that already exists (in the archive or listed twice),
    /// is refused with a 422 naming the path. The blob is verified while it is copied.
    static func place(_ resources: [PoolResource], blobs: [PoolResource.Key: String], root: String, blobstore: Blobstore) throws {
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { throw failure("cannot open the package's scratch directory") }
        defer { close(rootFD) }
        for resource in resources {
            guard let blob = blobs[resource.key] else { throw Unavailable(resource: resource) }
            let parts = resource.path.split(separator: "/").map(String.init)
            guard let name = parts.last else { throw refused(resource.path, "names no file") }
            let dir = try openParent(of: resource.path, parts: parts.dropLast(), root: rootFD)
            defer { close(dir) }
            let fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                if errno == EEXIST { throw refused(resource.path, "is also in the uploaded archive") }
                throw failure("cannot create '\(resource.path)'")
            }
            var ok = false
            defer {
                close(fd)
                if !ok { _ = unlinkat(dir, name, 0) }
            }
            var written: Int64 = 0
            do {
                try blobstore.read(blob, chunkSize: 1 << 20) { chunk in
                    written += Int64(chunk.count)
                    guard written <= resource.key.size else { throw Unavailable(resource: resource) }
                    try writeAll(fd, chunk, path: resource.path)
                }
            } catch is Blobstore.Failure {
                throw Unavailable(resource: resource)
            }
            guard written == resource.key.size else { throw Unavailable(resource: resource) }
            guard fchmod(fd, mode_t(resource.permissions)) == 0 else { throw failure("cannot set the mode of '\(resource.path)'") }
            ok = true
        }
    }

    /// Opens (creating as needed) the directory `parts` below `root`, one component at a time.
    private static func openParent(of path: String, parts: ArraySlice<String>, root: Int32) throws -> Int32 {
        var dir = dup(root)
        guard dir >= 0 else { throw failure("cannot open the package's scratch directory") }
        var prefix = ""
        do {
            for part in parts {
                prefix = prefix.isEmpty ? part : prefix + "/" + part
                var st = stat()
                var created = false
                if fstatat(dir, part, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                    guard errno == ENOENT, mkdirat(dir, part, 0o755) == 0 else { throw failure("cannot create '\(prefix)'") }
                    created = true
                } else if (st.st_mode & S_IFMT) == S_IFLNK {
                    throw refused(path, "is under '\(prefix)', which is a symlink in the uploaded archive; nothing is written through a symlink")
                } else if (st.st_mode & S_IFMT) != S_IFDIR {
                    throw refused(path, "is under '\(prefix)', which is a file in the uploaded archive")
                }
                let next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard next >= 0 else { throw failure("cannot open '\(prefix)'") }
                close(dir)
                dir = next
                // mkdirat applies the umask; directories of a package are 0755 like extracted ones.
                if created, fchmod(dir, 0o755) != 0 { throw failure("cannot set the mode of '\(prefix)'") }
            }
        } catch {
            close(dir)
            throw error
        }
        return dir
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw failure("cannot write '\(path)'")
                }
                offset += count
            }
        }
    }

    /// Every regular file under `root` whose size the pool accepts, except `skip` (files that
    /// came from the pool), with its SHA-1 and SHA-256. Symlinks are neither followed nor listed.
    static func poolCandidates(root: String, pool: ResourcePool, skip: Set<String>) throws -> [Candidate] {
        var found: [Candidate] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? root : root + "/" + relative
            for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
                let path = relative.isEmpty ? name : relative + "/" + name
                var st = stat()
                guard lstat(root + "/" + path, &st) == 0 else { throw failure("cannot inspect '\(path)'") }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    pending.append(path)
                case S_IFREG where pool.accepts(size: Int64(st.st_size)) && !skip.contains(path):
                    if let candidate = try hash(root: root, path: path) { found.append(candidate) }
                default:
                    continue
                }
            }
        }
        return found
    }

    /// Reads a file once for both digests; nil when it is no longer a regular file.
    private static func hash(root: String, path: String) throws -> Candidate? {
        let fd = open(root + "/" + path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var sha1 = Insecure.SHA1()
        var sha256 = SHA256()
        var size: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read '\(path)'")
            }
            if count == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            sha1.update(bufferPointer: chunk)
            sha256.update(bufferPointer: chunk)
            size += Int64(count)
        }
        return Candidate(key: .init(sha1: hex(sha1.finalize()), size: size), sha256: hex(sha256.finalize()), path: path)
    }

    /// Copies a candidate into the blobstore (unless an identical blob is there already, which
    /// is renewed instead); false when the file changed since it was hashed.
    static func store(_ candidate: Candidate, root: String, blobstore: Blobstore) throws -> Bool {
        if blobstore.retain(candidate.sha256) { return true }
        guard let handle = FileHandle(forReadingAtPath: root + "/" + candidate.path) else { return false }
        defer { try? handle.close() }
        let writer = try blobstore.writer(limit: Int(candidate.key.size))
        do {
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
                try writer.write(data)
            }
            let result = try writer.finish()
            guard result.sha256 == candidate.sha256, Int64(result.size) == candidate.key.size else {
                writer.discard()
                return false
            }
            _ = try blobstore.commit(result)
            return true
        } catch {
            writer.discard()
            throw error
        }
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// The host's file system failed (disk full, permissions): a server fault, never the client's.
    struct IOFailure: Error, CustomStringConvertible {
        let description: String
    }

    private static func failure(_ message: String) -> IOFailure {
        IOFailure(description: "\(message): \(String(cString: strerror(errno)))")
    }
}

extension APIError {
    /// 422 `CF-AppBitsUploadInvalid` (170002), CF's answer for app bits it will not take.
    static func appBitsInvalid(_ detail: String) -> APIError {
        APIError(status: .unprocessableContent, code: 170002, title: "CF-AppBitsUploadInvalid", detail: "The app upload is invalid: \(detail)")
    }
}
