import Foundation
import PlatformModels

/// The environment and argument vector of one instance, as CONTRACTS.md (Environment of an
/// instance) fixes them. Pure: everything comes from the assignment and the instance's network.
public struct InstanceEnvironment: Sendable, Equatable {
    /// Where the app's files are inside the container, and its working directory.
    public static let appDirectory = "/home/vcap/app"
    /// `$TMPDIR` inside the container.
    public static let tmpDirectory = "/home/vcap/tmp"
    /// The container port every app listens on.
    public static let port = 8080

    /// `KEY=value` strings, platform variables first, then the user's.
    public var variables: [String]
    /// The container's argument vector (the launcher, then the start command).
    public var arguments: [String]

    /// What the agent knows about the instance's place on this host.
    public struct Placement: Sendable, Equatable {
        public var hostAddress: String
        public var hostPort: Int
        public var containerAddress: String
        public var startedAt: Date

        public init(hostAddress: String, hostPort: Int, containerAddress: String, startedAt: Date) {
            self.hostAddress = hostAddress
            self.hostPort = hostPort
            self.containerAddress = containerAddress
            self.startedAt = startedAt
        }
    }

    /// Names the platform sets; a user variable of the same name (or prefix) is ignored.
    static func isReserved(_ name: String) -> Bool {
        ["PORT", "HOME", "TMPDIR", "USER", "MEMORY_LIMIT", "VCAP_APP_HOST", "VCAP_APP_PORT", "VCAP_APPLICATION",
         "VCAP_SERVICES", "PATH"].contains(name) || name.hasPrefix("CF_INSTANCE_")
    }

    /// A variable name the shell and `env` accept: letters, digits, underscores, not starting with a digit.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    public init(assignment a: InstanceAssignment, placement p: Placement) {
        var vcap = a.vcapApplication
        vcap["instance_id"] = .string(a.instanceGUID)
        vcap["instance_index"] = .number(Double(a.index))
        vcap["host"] = .string("0.0.0.0")
        vcap["port"] = .number(Double(Self.port))
        vcap["process_id"] = vcap["process_id"] ?? .string(a.processGUID)
        vcap["process_type"] = vcap["process_type"] ?? .string(a.processType)
        vcap["application_id"] = vcap["application_id"] ?? .string(a.appGUID)
        vcap["application_name"] = vcap["application_name"] ?? .string(a.appName)
        vcap["name"] = vcap["name"] ?? .string(a.appName)
        vcap["limits"] = vcap["limits"] ?? .object(["mem": .number(Double(a.memoryMB)), "disk": .number(Double(a.diskMB)),
                                                      "fds": .number(Double(a.fileDescriptors))])
        let started = Self.timestamp(p.startedAt)
        vcap["start"] = .string(started)
        vcap["started_at"] = .string(started)
        vcap["state_timestamp"] = .number(p.startedAt.timeIntervalSince1970.rounded())

        var env: [String] = [
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "PORT=\(Self.port)",
            "HOME=\(Self.appDirectory)",
            "TMPDIR=\(Self.tmpDirectory)",
            "USER=vcap",
            "LANG=en_US.UTF-8",
            "MEMORY_LIMIT=\(a.memoryMB)M",
            "CF_INSTANCE_INDEX=\(a.index)",
            "CF_INSTANCE_GUID=\(a.instanceGUID)",
            "CF_INSTANCE_IP=\(p.hostAddress)",
            "CF_INSTANCE_INTERNAL_IP=\(p.containerAddress)",
            "CF_INSTANCE_PORT=\(p.hostPort)",
            "CF_INSTANCE_ADDR=\(p.hostAddress):\(p.hostPort)",
            "CF_INSTANCE_PORTS=[{\"external\":\(p.hostPort),\"internal\":\(Self.port)}]",
            "VCAP_APP_HOST=0.0.0.0",
            "VCAP_APP_PORT=\(Self.port)",
            "VCAP_APPLICATION=\(Self.json(.object(vcap)))",
            "VCAP_SERVICES=\(a.vcapServices.isEmpty ? "{}" : a.vcapServices)",
        ]
        for name in a.environment.keys.sorted() where Self.isValidName(name) && !Self.isReserved(name) {
            let value = a.environment[name] ?? ""
            guard !value.contains("\0") else { continue }
            env.append("\(name)=\(value)")
        }
        variables = env
        arguments = ["/bin/bash", "-c", Self.launcher, "cf-like-launch", a.command]
    }

    /// Compact JSON with sorted keys (stable across restarts of the same instance).
    static func json(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// The container's first process: sources `.profile.d` scripts, runs the start command
    /// (`$1`) with `bash -c` as its child and passes SIGTERM/SIGINT on to it. A pid
    /// namespace's init gets only signals it handles, so without this trap an app that never
    /// installed a SIGTERM handler would ignore the agent's stop and always take the full
    /// grace period before SIGKILL. Exits with the command's status (128 + signal if killed).
    static let launcher = """
        cd /home/vcap/app || exit 70
        for f in /home/vcap/profile.d/*.sh /home/vcap/app/.profile.d/*.sh; do
          if [ -r "$f" ]; then . "$f"; fi
        done
        trap 'kill -TERM "$child" 2>/dev/null' TERM
        trap 'kill -INT "$child" 2>/dev/null' INT
        bash -c "$1" &
        child=$!
        while :; do
          wait "$child"
          status=$?
          kill -0 "$child" 2>/dev/null || break
        done
        exit "$status"
        """
}
