import Foundation
import PlatformModels

/// The environment buildpacks see while staging: the platform's variables (as CF's staging
/// sets them), then the app's own, which may not replace a platform variable.
struct StagingEnvironment {
    let job: StagingJob

    /// Variables no app variable may replace.
    static let reserved: Set<String> = [
        "PATH", "HOME", "LANG", "USER", "CF_STACK", "MEMORY_LIMIT", "VCAP_APPLICATION", "VCAP_SERVICES",
        "CF_INSTANCE_INDEX", "CF_INSTANCE_GUID", "PORT",
    ]

    var variables: [String] {
        var vars = [
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "HOME=/home/vcap",
            "USER=vcap",
            "LANG=C.UTF-8",
            "CF_STACK=\(job.stack)",
            "MEMORY_LIMIT=\(job.memoryMB)m",
            "VCAP_APPLICATION=\(vcapApplication)",
            "VCAP_SERVICES={}",
        ]
        for name in job.environment.keys.sorted() where Self.isValidName(name) && !Self.reserved.contains(name) {
            vars.append("\(name)=\(job.environment[name] ?? "")")
        }
        return vars
    }

    /// `VCAP_APPLICATION` without the instance fields (there is no instance yet).
    var vcapApplication: String {
        let value: [String: JSONValue] = [
            "application_id": .string(job.appGUID),
            "application_name": .string(job.appName),
            "name": .string(job.appName),
            "space_id": .string(job.spaceGUID),
            "space_name": .string(job.spaceName),
            "organization_id": .string(job.organizationGUID),
            "organization_name": .string(job.organizationName),
            "limits": .object(["mem": .number(Double(job.memoryMB)), "disk": .number(Double(job.diskMB))]),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
    }

    /// Environment variable names a shell can use: `[A-Za-z_][A-Za-z0-9_]*`, at most 255 bytes.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 255 else { return false }
        func letter(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" }
        return letter(first) && name.unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) }
    }
}
