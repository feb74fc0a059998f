import ArgumentParser
import Foundation
import PlatformClient
import PlatformModels

/// `cf-like-admin users`.
public struct UsersCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "users", abstract: "List users.",
                                                           discussion: "Example:\n  cf-like-admin users --json")
    @OptionGroup var output: JSONOption
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let users = try await Session().all("/v3/users?order_by=username", as: UserResource.self)
            if output.json { print(try Output.json(users)); return }
            Output.printTable(["username", "guid", "created"], users.map { [$0.username, $0.guid, $0.createdAt] })
        }
    }
}

/// `cf-like-admin create-user NAME [--password-file F]`.
public struct CreateUserCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "create-user", abstract: "Create a user.",
        discussion: "Reads the password from --password-file, or prompts without echo.\n\nExample:\n  cf-like-admin create-user alice --password-file alice.pw")
    @Argument(help: "Username.") var name: String
    @Option(help: "File whose first line is the password.") var passwordFile: String?
    @Flag(help: "Make the user a platform admin.") var admin = false
    public init() {}

    public func run() async throws {
        try await reportingErrors {
            let password: String
            if let passwordFile {
                guard let data = FileManager.default.contents(atPath: passwordFile),
                      let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first, !line.isEmpty
                else { throw CLIError.usage("cannot read a password from \(passwordFile)") }
                password = String(line)
            } else {
                guard let typed = Output.readSecret("Password for \(name): "), !typed.isEmpty else {
                    throw CLIError.usage("a password is required: --password-file F, or run on a terminal to be prompted")
                }
                password = typed
            }
            let user = try await Session().call("POST", "/v3/users", json: CreateUserRequest(username: name, password: password, admin: admin),
                                                as: UserResource.self)
            print("Created user \(user.username) (\(user.guid)).")
        }
    }
}

/// `cf-like-admin delete-user NAME`.
public struct DeleteUserCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "delete-user", abstract: "Delete a user.",
                                                           discussion: "Example:\n  cf-like-admin delete-user alice")
    @Argument(help: "Username.") var name: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let list = try await session.call("GET", "/v3/users?usernames=\(PlatformClient.query(name))", as: ListResponse<UserResource>.self)
            guard let user = list.resources.first else { throw CLIError.operation("User '\(name)' not found") }
            try PlatformClient.check(try await session.send("DELETE", "/v3/users/\(user.guid)"))
            print("Deleted user \(name).")
        }
    }
}

/// `cf-like-admin create-org NAME`.
public struct CreateOrgCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "create-org", abstract: "Create an organization.",
                                                           discussion: "Example:\n  cf-like-admin create-org acme")
    @Argument(help: "Name.") var name: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let org = try await Session().call("POST", "/v3/organizations", json: CreateOrganizationRequest(name: name),
                                               as: OrganizationResource.self)
            print("Created org \(org.name) (\(org.guid)).")
        }
    }
}

/// `cf-like-admin create-space NAME -o ORG`.
public struct CreateSpaceCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "create-space", abstract: "Create a space in an organization.",
                                                           discussion: "Example:\n  cf-like-admin create-space dev -o acme")
    @Argument(help: "Name.") var name: String
    @Option(name: .short, help: "Organization.") var o: String
    public init() {}
    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let org = try await session.find("/v3/organizations", name: o, kind: "Organization", as: OrganizationResource.self)
            let space = try await session.call("POST", "/v3/spaces", json: CreateSpaceRequest(name: name, organizationGuid: org.guid),
                                               as: SpaceResource.self)
            print("Created space \(space.name) in org \(org.name).")
        }
    }
}

/// `cf-like-admin set-org-role USER ORG ROLE`.
public struct SetOrgRoleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "set-org-role", abstract: "Give a user a role in an organization.",
        discussion: "Roles: OrgManager, OrgAuditor, OrgUser (or organization_manager, ...).\n\nExample:\n  cf-like-admin set-org-role alice acme OrgManager")
    @Argument var user: String
    @Argument var org: String
    @Argument var role: String
    public init() {}

    static let names = ["orgmanager": "organization_manager", "orgauditor": "organization_auditor", "orguser": "organization_user",
                        "billingmanager": "organization_billing_manager"]

    public func validate() throws {
        let type = Self.names[role.lowercased()] ?? role
        guard Self.names.values.contains(type) else { throw ValidationError("unknown org role '\(role)': use OrgManager, OrgAuditor or OrgUser") }
    }

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let target = try await session.find("/v3/organizations", name: org, kind: "Organization", as: OrganizationResource.self)
            let type = Self.names[role.lowercased()] ?? role
            _ = try await session.call("POST", "/v3/roles", json: CreateRoleRequest(
                type: type, relationships: .init(user: RelationshipRequest(username: user), organization: RelationshipRequest(guid: target.guid))),
                as: RoleResource.self)
            print("Gave \(user) the role \(type) in org \(org).")
        }
    }
}

/// `cf-like-admin set-space-role USER ORG SPACE ROLE`.
public struct SetSpaceRoleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "set-space-role", abstract: "Give a user a role in a space.",
        discussion: "Roles: SpaceDeveloper, SpaceManager, SpaceAuditor.\n\nExample:\n  cf-like-admin set-space-role alice acme dev SpaceDeveloper")
    @Argument var user: String
    @Argument var org: String
    @Argument var space: String
    @Argument var role: String
    public init() {}

    static let names = ["spacedeveloper": "space_developer", "spacemanager": "space_manager", "spaceauditor": "space_auditor",
                        "spacesupporter": "space_supporter"]

    public func validate() throws {
        let type = Self.names[role.lowercased()] ?? role
        guard Self.names.values.contains(type) else {
            throw ValidationError("unknown space role '\(role)': use SpaceDeveloper, SpaceManager or SpaceAuditor")
        }
    }

    public func run() async throws {
        try await reportingErrors {
            let session = try Session()
            let (_, targetSpace) = try await session.space(space, inOrg: org)
            let type = Self.names[role.lowercased()] ?? role
            _ = try await session.call("POST", "/v3/roles", json: CreateRoleRequest(
                type: type, relationships: .init(user: RelationshipRequest(username: user), space: RelationshipRequest(guid: targetSpace.guid))),
                as: RoleResource.self)
            print("Gave \(user) the role \(type) in space \(space) of org \(org).")
        }
    }
}
