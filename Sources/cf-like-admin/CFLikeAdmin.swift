import ArgumentParser
import CLIKit

/// `cf-like-admin`: the operator CLI (log in as an admin with `cf-like login` first).
@main
struct CFLikeAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cf-like-admin",
        abstract: "Operate a cf-like platform: status, DEAs, instances, alerts, route table, events, users, orgs, spaces, roles, buildpacks.",
        discussion: "Example:\n  cf-like-admin status\n  cf-like-admin create-org acme\n  cf-like-admin create-user alice --password-file alice.pw\n  cf-like-admin set-org-role alice acme OrgManager\n  cf-like-admin --generate-completion-script bash > /etc/bash_completion.d/cf-like-admin",
        version: "0.1.0",
        subcommands: [StatusCommand.self, DEAsCommand.self, DEACommand.self, DrainCommand.self, UndrainCommand.self, InstancesCommand.self,
                      AlertsCommand.self, AlertCommand.self, RouteTableCommand.self,
                      PlatformEventsCommand.self, UsersCommand.self, CreateUserCommand.self, DeleteUserCommand.self, PasswdCommand.self,
                      CreateOrgCommand.self, DeleteOrgCommand.self, CreateSpaceCommand.self, DeleteSpaceCommand.self,
                      SetOrgRoleCommand.self, UnsetOrgRoleCommand.self, SetSpaceRoleCommand.self, UnsetSpaceRoleCommand.self,
                      BuildpacksCommand.self,
                      CreateBuildpackCommand.self, UpdateBuildpackCommand.self, DeleteBuildpackCommand.self])
}
