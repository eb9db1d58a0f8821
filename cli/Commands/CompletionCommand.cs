using System.CommandLine;

namespace Guard.Cli.Commands;

/// <summary>`guard completion bash|zsh` and the hidden `guard man`: what the package installs, for a person without it.</summary>
public static class CompletionCommand
{
    private static readonly Argument<string> Shell = new("SHELL") { Description = "bash or zsh" };

    /// <summary>`guard completion SHELL`: the completion script on stdout.</summary>
    public static Command Create(IConsole console, Func<RootCommand> root)
    {
        Shell.AcceptOnlyFromAmong(ShellCompletion.Shells);
        var command = new Command("completion", "Print the shell completion script for bash or zsh (the package installs both). Example: guard completion bash > /etc/bash_completion.d/guard");
        command.Arguments.Add(Shell);
        command.SetAction(parse =>
        {
            console.Out.Write(ShellCompletion.Write(parse.GetValue(Shell)!, root()));
            return (int)ExitCode.Success;
        });
        return command;
    }

    /// <summary>`guard man`: guard(1) in roff on stdout, dated by SOURCE_DATE_EPOCH when set (reproducible builds), else today.</summary>
    public static Command CreateManPage(IConsole console, Func<RootCommand> root)
    {
        var command = new Command("man", "Print the guard(1) man page in roff.") { Hidden = true };
        command.SetAction(_ =>
        {
            DateTimeOffset when = long.TryParse(Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH"), out long epoch)
                ? DateTimeOffset.FromUnixTimeSeconds(epoch) : DateTimeOffset.UtcNow;
            console.Out.Write(ManPage.Write(root(), GuardCli.Version, DateOnly.FromDateTime(when.UtcDateTime)));
            return (int)ExitCode.Success;
        });
        return command;
    }
}
