import ArgumentParser
import CLIKit

/// `cf-like`: the developer CLI.
@main
struct CFLike: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cf-like",
        abstract: "Push and run apps on a cf-like platform.",
        discussion: "Example:\n  cf-like login -a http://127.0.0.1:9022 -u admin\n  cf-like target -o acme -s dev\n  cf-like push hello -p ./hello\n  cf-like apps",
        version: "0.1.0",
        subcommands: [APICommand.self, LoginCommand.self, LogoutCommand.self, TargetCommand.self, OrgsCommand.self,
                      SpacesCommand.self, AppsCommand.self, PushCommand.self, AppCommand.self,
                      StartCommand.self, StopCommand.self, RestartCommand.self, RestageCommand.self, RestartAppInstanceCommand.self,
                      ScaleCommand.self,
                      DeleteCommand.self, LogsCommand.self, EnvCommand.self, SetEnvCommand.self, UnsetEnvCommand.self,
                      RoutesCommand.self, MapRouteCommand.self, UnmapRouteCommand.self,
                      EventsCommand.self, DropletsCommand.self, BuildpacksCommand.self, StacksCommand.self, CurlCommand.self])
}
