import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

/// Asking before something destructive, as cf does: `-f` skips the question; without a terminal
/// and without `-f` the command refuses rather than guess.
enum Confirmation {
    /// True for the answers cf takes as yes.
    static func isYes(_ answer: String) -> Bool {
        ["y", "yes"].contains(answer.trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// Asks `question` unless `force`; answers whether to go on.
    static func confirm(_ question: String, force: Bool, command: String,
                        read: (String) -> String? = Output.readLineIfTerminal) throws -> Bool {
        if force { return true }
        guard let answer = read("\(question) [yN]: ") else {
            throw CLIError.usage("\(command) needs -f when no terminal is attached to confirm on")
        }
        return isYes(answer)
    }
}

/// A new password from a file (its first line) or typed twice without echo.
enum PasswordInput {
    static func fromFile(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path),
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first,
              !line.isEmpty
        else { throw CLIError.usage("cannot read a password from \(path)") }
        return String(line)
    }

    /// The password for `user`: from `file`, else prompted twice (the two must match).
    static func newPassword(for user: String, file: String?, readSecret: (String) -> String? = Output.readSecret) throws -> String {
        if let file { return try fromFile(file) }
        guard let first = readSecret("New password for \(user): ") else {
            throw CLIError.usage("a password is required: --password-file F, or run on a terminal to be prompted")
        }
        guard !first.isEmpty else { throw CLIError.usage("the password must not be empty") }
        guard let second = readSecret("Retype the new password: "), second == first else {
            throw CLIError.usage("the passwords do not match; nothing was changed")
        }
        return first
    }
}

extension Session {
    /// The user of that name, or an error naming it.
    func user(named name: String) async throws -> UserResource {
        let list = try await call("GET", "/v3/users?usernames=\(PlatformClient.query(name))", as: ListResponse<UserResource>.self)
        guard let user = list.resources.first else { throw CLIError.operation("User '\(name)' not found") }
        return user
    }

    /// The organization of that name, or nil.
    func organization(named name: String) async throws -> OrganizationResource? {
        try await call("GET", "/v3/organizations?names=\(PlatformClient.query(name))", as: ListResponse<OrganizationResource>.self)
            .resources.first
    }
}

extension SetOrgRoleCommand {
    /// The API's role type for a cf role name (`OrgManager`) or an API type (`organization_manager`).
    static func roleType(_ role: String) throws -> String {
        let type = names[role.lowercased()] ?? role
        guard names.values.contains(type) else { throw ValidationError("unknown org role '\(role)': use OrgManager, OrgAuditor or OrgUser") }
        return type
    }
}

extension SetSpaceRoleCommand {
    /// The API's role type for a cf role name (`SpaceDeveloper`) or an API type (`space_developer`).
    static func roleType(_ role: String) throws -> String {
        let type = names[role.lowercased()] ?? role
        guard names.values.contains(type) else {
            throw ValidationError("unknown space role '\(role)': use SpaceDeveloper, SpaceManager or SpaceAuditor")
        }
        return type
    }
}

/// `cf-like-admin delete-org NAME [-f]`.
public struct DeleteOrgCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "delete-org", abstract: "Delete an organization with its spaces, apps and routes.",
        discussion: "Asks first on a terminal unless -f; without a terminal, -f is required.\n\nExample:\n  cf-like-admin delete-org acme -f")
    @Argument(help: "Organization name.") var name: String
    @Flag(name: .short, help: "Do not ask.") var f = false
    public init() {}

    public func run() async throws {
        try await reportingErrors {
            guard try Confirmation.confirm("Really delete the org \(name), including its spaces, apps and routes?", force: f,
                                           command: "delete-org")
            else { print("Delete cancelled."); return }
            let session = try Session()
            guard let org = try await session.organization(named: name) else { print("Org \(name) does not exist."); return }
            print("Deleting org \(name) as \(session.config.username ?? "?")...")
            try PlatformClient.check(try await session.send("DELETE", "/v3/organizations/\(org.guid)"))
            if session.config.organizationGuid == org.guid {
                session.update { $0.organizationGuid = nil; $0.organizationName = nil; $0.spaceGuid = nil; $0.spaceName = nil }
                try session.save()
            }
            print("Deleted org \(name).")
        }
    }
}

/// `cf-like-admin delete-space NAME [-o ORG] [-f]`.
public struct DeleteSpaceCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "delete-space", abstract: "Delete a space with its apps and routes.",
        discussion: "The org is -o ORG, else the targeted one. Asks first on a terminal unless -f; without a terminal, -f is required.\n\nExample:\n  cf-like-admin delete-space dev -o acme -f")
    @Argument(help: "Space name.") var name: String
    @Option(name: .short, help: "Organization (default: the targeted one).") var o: String?
    @Flag(name: .short, help: "Do not ask.") var f = false
    public init() {}

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let orgName: String
            let orgGuid: String
            if let o {
                guard let org = try await session.organization(named: o) else { throw CLIError.operation("Organization '\(o)' not found") }
                orgName = org.name; orgGuid = org.guid
            } else {
                guard let guid = session.config.organizationGuid, let targeted = session.config.organizationName else {
                    throw CLIError.usage("name the org with -o ORG, or target one with `cf-like target -o ORG`")
                }
                orgName = targeted; orgGuid = guid
            }
            guard try Confirmation.confirm("Really delete the space \(name) of org \(orgName), including its apps and routes?", force: f,
                                           command: "delete-space")
            else { print("Delete cancelled."); return }
            let list = try await session.call("GET", "/v3/spaces?organization_guids=\(orgGuid)&names=\(PlatformClient.query(name))",
                                              as: ListResponse<SpaceResource>.self)
            guard let space = list.resources.first else { print("Space \(name) does not exist in org \(orgName)."); return }
            print("Deleting space \(name) in org \(orgName) as \(session.config.username ?? "?")...")
            try PlatformClient.check(try await session.send("DELETE", "/v3/spaces/\(space.guid)"))
            if session.config.spaceGuid == space.guid {
                session.update { $0.spaceGuid = nil; $0.spaceName = nil }
                try session.save()
            }
            print("Deleted space \(name).")
        }
    }
}

/// `cf-like-admin passwd NAME [--password-file F]`.
public struct PasswdCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "passwd", abstract: "Set a user's password.",
        discussion: """
            An admin sets anyone's password; the user's tokens issued before stop working and their \
            refresh tokens are revoked, so they log in again. Reads the password from --password-file, \
            or prompts twice without echo. For your own password on a terminal, asks the current one too.

            Example:
              cf-like-admin passwd alice --password-file alice.pw
            """)
    @Argument(help: "Username.") var name: String
    @Option(help: "File whose first line is the new password.") var passwordFile: String?
    public init() {}

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let user = try await session.user(named: name)
            let own = session.config.username == name
            var old: String?
            if own, passwordFile == nil {
                guard let typed = Output.readSecret("Current password: ") else {
                    throw CLIError.usage("a password is required: --password-file F, or run on a terminal to be prompted")
                }
                old = typed
            }
            let password = try PasswordInput.newPassword(for: name, file: passwordFile)
            _ = try await session.call("PATCH", "/v3/users/\(user.guid)", json: UpdateUserRequest(password: password, oldPassword: old),
                                       as: UserResource.self)
            print("Changed the password of \(name).")
            if own { print("Your tokens were revoked: log in again with `cf-like login`.") }
        }
    }
}

/// `cf-like-admin unset-org-role USER ORG ROLE`.
public struct UnsetOrgRoleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "unset-org-role", abstract: "Take a role in an organization from a user.",
        discussion: "Roles: OrgManager, OrgAuditor, OrgUser, BillingManager (or organization_manager, ...).\n\nExample:\n  cf-like-admin unset-org-role alice acme OrgManager")
    @Argument var user: String
    @Argument var org: String
    @Argument var role: String
    public init() {}

    public func validate() throws {
        _ = try SetOrgRoleCommand.roleType(role)
    }

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let target = try await session.find("/v3/organizations", name: org, kind: "Organization", as: OrganizationResource.self)
            let type = try SetOrgRoleCommand.roleType(role)
            guard try await session.removeRoles(type, of: user, in: "organization_guids=\(target.guid)") else {
                print("\(user) does not have the role \(type) in org \(org).")
                return
            }
            print("Removed the role \(type) in org \(org) from \(user).")
        }
    }
}

/// `cf-like-admin unset-space-role USER ORG SPACE ROLE`.
public struct UnsetSpaceRoleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "unset-space-role", abstract: "Take a role in a space from a user.",
        discussion: "Roles: SpaceDeveloper, SpaceManager, SpaceAuditor, SpaceSupporter.\n\nExample:\n  cf-like-admin unset-space-role alice acme dev SpaceDeveloper")
    @Argument var user: String
    @Argument var org: String
    @Argument var space: String
    @Argument var role: String
    public init() {}

    public func validate() throws {
        _ = try SetSpaceRoleCommand.roleType(role)
    }

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let (_, targetSpace) = try await session.space(space, inOrg: org)
            let type = try SetSpaceRoleCommand.roleType(role)
            guard try await session.removeRoles(type, of: user, in: "space_guids=\(targetSpace.guid)") else {
                print("\(user) does not have the role \(type) in space \(space) of org \(org).")
                return
            }
            print("Removed the role \(type) in space \(space) of org \(org) from \(user).")
        }
    }
}

extension Session {
    /// The organization named `org` and its space named `space`; errors name what is missing.
    func space(_ space: String, inOrg org: String) async throws -> (OrganizationResource, SpaceResource) {
        let organization = try await find("/v3/organizations", name: org, kind: "Organization", as: OrganizationResource.self)
        let found = try await find("/v3/spaces?organization_guids=\(organization.guid)", name: space, kind: "Space",
                                   as: SpaceResource.self)
        return (organization, found)
    }

    /// Deletes `user`'s roles of `type` within `scope` (a roles filter such as `space_guids=G`);
    /// false when the user had none.
    func removeRoles(_ type: String, of user: String, in scope: String) async throws -> Bool {
        let found = try await self.user(named: user)
        let roles = try await all("/v3/roles?types=\(type)&user_guids=\(found.guid)&\(scope)", as: RoleResource.self)
        for role in roles { try PlatformClient.check(try await send("DELETE", "/v3/roles/\(role.guid)")) }
        return !roles.isEmpty
    }
}
