import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The "host userland" stack: a skeleton root filesystem whose programs come from the host's
/// merged `/usr`, bound read-only at run time, with its own generated `/etc`.
///
/// The skeleton holds mount points, the `bin`/`lib`/`lib64`/`sbin` symlinks into `usr` (Debian's
/// merged /usr), a world-writable sticky `/tmp`, the unprivileged user's home, and an `/etc` with
/// only what a process needs to resolve users, hosts and libraries — never the host's users,
/// shadow file or configuration secrets.
public struct HostStack: Sendable {
    /// The unprivileged account the skeleton's passwd and group define.
    public struct Account: Sendable, Equatable {
        /// Login name.
        public var name: String
        /// uid.
        public var uid: UInt32
        /// gid (a group of the same name is written).
        public var gid: UInt32
        /// Home directory inside the container.
        public var home: String
        /// Login shell.
        public var shell: String

        /// An account; the default is `vcap` 2000:2000 with home `/home/vcap`.
        public init(name: String = "vcap", uid: UInt32 = 2000, gid: UInt32 = 2000, home: String = "/home/vcap", shell: String = "/bin/bash") {
            self.name = name
            self.uid = uid
            self.gid = gid
            self.home = home
            self.shell = shell
        }
    }

    /// The unprivileged user.
    public var account: Account
    /// Written to `/etc/hostname` and mapped to 127.0.1.1 in `/etc/hosts`.
    public var hostname: String
    /// Extra `/etc/hosts` lines (`address name`).
    public var extraHosts: [(address: String, name: String)]
    /// The host's `/usr`, bound read-only.
    public var hostUsr: String
    /// The host's resolv.conf, copied.
    public var hostResolvConf: String
    /// The host's ld.so.cache, copied (without it the dynamic linker misses the multiarch dirs).
    public var hostLdSoCache: String

    /// A stack description with Debian's paths as defaults.
    public init(
        account: Account = Account(),
        hostname: String = "container",
        extraHosts: [(address: String, name: String)] = [],
        hostUsr: String = "/usr",
        hostResolvConf: String = "/etc/resolv.conf",
        hostLdSoCache: String = "/etc/ld.so.cache"
    ) {
        self.account = account
        self.hostname = hostname
        self.extraHosts = extraHosts
        self.hostUsr = hostUsr
        self.hostResolvConf = hostResolvConf
        self.hostLdSoCache = hostLdSoCache
    }

    /// Writes the skeleton into `directory` (created if missing; existing files are replaced).
    public func buildSkeleton(at directory: String) throws {
        guard directory.hasPrefix("/") else {
            throw ContainerError(.invalidArgument, "skeleton path must be absolute: \(directory)")
        }
        let fm = FileManager.default
        let dirs = ["usr", "proc", "dev", "sys", "tmp", "run", "var/tmp", "root", "etc/ssl/certs", "etc/alternatives", "mnt", "opt"]
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            for dir in dirs {
                try fm.createDirectory(atPath: "\(directory)/\(dir)", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            }
            for sticky in ["tmp", "var/tmp"] {
                try fm.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: "\(directory)/\(sticky)")
            }
            try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: "\(directory)/root")
            for link in ["bin", "lib", "lib64", "sbin"] {
                let path = "\(directory)/\(link)"
                if (try? fm.destinationOfSymbolicLink(atPath: path)) != nil || fm.fileExists(atPath: path) {
                    try fm.removeItem(atPath: path)
                }
                try fm.createSymbolicLink(atPath: path, withDestinationPath: "usr/\(link)")
            }
            let home = directory + account.home
            try fm.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            guard chown(home, account.uid, account.gid) == 0 else {
                throw ContainerError.systemCall("chown", home, errno: errno)
            }
        } catch let error as ContainerError {
            throw error
        } catch {
            throw ContainerError(.io, "cannot build skeleton at \(directory)", cause: error)
        }
        try writeEtc(at: directory + "/etc")
    }

    /// The read-only bind mounts the skeleton expects: `/usr` (rbind, ro, nosuid, nodev),
    /// `/etc/ssl/certs` and `/etc/alternatives` (ro), skipping host paths that do not exist.
    public func readOnlyMounts() -> [Mount] {
        var mounts = [Mount(destination: "/usr", type: "bind", source: hostUsr, options: ["rbind", "ro", "nosuid", "nodev"])]
        for path in ["/etc/ssl/certs", "/etc/alternatives"] where FileManager.default.fileExists(atPath: path) {
            mounts.append(Mount(destination: path, type: "bind", source: path, options: ["rbind", "ro", "nosuid", "nodev"]))
        }
        return mounts
    }

    private func writeEtc(at etc: String) throws {
        let a = account
        let passwd = """
            root:x:0:0:root:/root:/usr/sbin/nologin
            \(a.name):x:\(a.uid):\(a.gid):\(a.name):\(a.home):\(a.shell)
            nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin

            """
        let group = """
            root:x:0:
            tty:x:5:
            \(a.name):x:\(a.gid):
            nogroup:x:65534:

            """
        var hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t\(hostname)\n"
        for entry in extraHosts { hosts += "\(entry.address)\t\(entry.name)\n" }
        // Only files and DNS: the host's nsswitch may name NSS modules (systemd, ldap) whose
        // daemons the container cannot and must not reach.
        let nsswitch = """
            passwd: files
            group: files
            shadow: files
            hosts: files dns
            networks: files
            protocols: files
            services: files
            ethers: files
            rpc: files

            """
        try write(passwd, to: etc + "/passwd", mode: 0o644)
        try write(group, to: etc + "/group", mode: 0o644)
        try write(hosts, to: etc + "/hosts", mode: 0o644)
        try write(hostname + "\n", to: etc + "/hostname", mode: 0o644)
        try write(nsswitch, to: etc + "/nsswitch.conf", mode: 0o644)
        try copy(hostResolvConf, to: etc + "/resolv.conf", fallback: "nameserver 127.0.0.53\n")
        try copy(hostLdSoCache, to: etc + "/ld.so.cache", fallback: nil)
    }

    private func write(_ text: String, to path: String, mode: Int) throws {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: [.atomic])
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        } catch {
            throw ContainerError(.io, "cannot write \(path)", cause: error)
        }
    }

    private func copy(_ source: String, to path: String, fallback: String?) throws {
        // Read through symlinks (resolv.conf is often one into /run) and write a plain file.
        if let data = FileManager.default.contents(atPath: source) {
            do {
                try data.write(to: URL(fileURLWithPath: path), options: [.atomic])
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            } catch {
                throw ContainerError(.io, "cannot write \(path)", cause: error)
            }
        } else if let fallback {
            try write(fallback, to: path, mode: 0o644)
        } else {
            throw ContainerError(.notFound, "cannot read host file \(source)")
        }
    }
}
