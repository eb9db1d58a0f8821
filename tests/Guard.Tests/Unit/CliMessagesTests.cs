using System.CommandLine;
using System.Text.Json;
using Guard.Cli;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>What the CLI says to a person: help pages with examples and defaults, colour only on a terminal, JSON from `guard gpu`, `guard policy check`'s counts and warnings.</summary>
public sealed class CliMessagesTests
{
    public static TheoryData<string> CommandPaths()
    {
        var data = new TheoryData<string>();
        foreach (CommandTree.Node node in CommandTree.Walk(GuardCli.Build(new TestConsole())))
            data.Add(node.Path);
        return data;
    }

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public void EveryHelpPageEndsWithExamplesOfItsOwnCommand(string path)
    {
        var console = new TestConsole();
        string[] args = [.. path.Split(' ', StringSplitOptions.RemoveEmptyEntries), "--help"];
        Assert.Equal(0, GuardCli.Run(args, console));
        string help = console.Out.ToString()!;
        int examples = help.IndexOf("\nExamples:\n", StringComparison.Ordinal);
        Assert.True(examples > 0, $"guard {path} --help has no Examples:\n{help}");
        string[] lines = help[examples..].Split('\n', StringSplitOptions.RemoveEmptyEntries)[1..];
        Assert.NotEmpty(lines);
        // Each example runs the command it is the help of.
        string command = path.Length == 0 ? "guard" : $"guard {path}";
        Assert.All(lines, l => Assert.Contains(path.Length == 0 ? "guard " : command, l, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public void EveryOptionThatTakesAValueStatesItsDefault(string path)
    {
        CommandTree.Node node = CommandTree.Walk(GuardCli.Build(new TestConsole())).Single(n => n.Path == path);
        foreach (Option option in node.Options.Where(o => !CommandTree.IsFlag(o) && !o.Required))
        {
            bool shown = option.HasDefaultValue || (option.Description ?? "").Contains("default", StringComparison.OrdinalIgnoreCase);
            Assert.True(shown, $"guard {path} {option.Name}: the help does not say its default: {option.Description}");
        }
    }

    [Theory]
    [InlineData("guard: --output: 'xml' is not one of auto, json, text, none", "watch", "--output", "xml")]
    [InlineData("guard: --output: 'yaml' is not one of text, json", "gpu", "-o", "yaml")]
    [InlineData("guard: --then: 'explode' is not one of release, kill", "quarantine", "4242", "--then", "explode")]
    [InlineData("guard: unknown option '--pid' for 'guard kill' (see 'guard kill --help')", "kill", "--pid", "abc")]
    [InlineData("guard: unknown option '--pid' for 'guard kill' (see 'guard kill --help')", "kill", "--pid", "4242")]
    [InlineData("guard: unknown option '--tre' for 'guard kill'; did you mean '--tree'?", "kill", "--tre", "4242")]
    [InlineData("guard: guard kill always sends SIGKILL (through a pidfd); leave '-s' out", "kill", "-s", "KILL", "4242")]
    [InlineData("guard: --duration: '1h30x' is not a duration (try 30s, 5m, 1h)", "watch", "--duration", "1h30x")]
    public void AValueOrOptionNotKnownIsNamedWithTheOptionAndWhatItTakes(string said, params string[] args)
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(args, console));
        Assert.Equal([said], console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("System.", console.ErrorText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, null, "xterm-256color", true)]
    [InlineData(false, "", "xterm", true)]
    [InlineData(true, null, "xterm-256color", false)] // piped: never
    [InlineData(false, "1", "xterm-256color", false)] // NO_COLOR set, whatever its value
    [InlineData(false, null, "dumb", false)]
    [InlineData(false, null, null, false)]
    public void ColourOnlyOnATerminalThatHasItWithoutNoColor(bool redirected, string? noColor, string? term, bool wanted) =>
        Assert.Equal(wanted, TerminalColour.Wanted(redirected, noColor, term));

    [Fact]
    public void GpuWritesJsonWithTheReasonWhenNvmlIsMissing()
    {
        var console = new TestConsole();
        int exit = GuardCli.Run(["gpu", "-o", "json"], console);
        string line = Assert.Single(console.JsonLines());
        using JsonDocument doc = JsonDocument.Parse(line);
        JsonElement nvml = doc.RootElement.GetProperty("nvml");
        JsonElement devices = doc.RootElement.GetProperty("devices");
        if (nvml.GetProperty("available").GetBoolean())
        {
            // A host with NVIDIA's library: each device as the table shows it.
            Assert.Equal(0, exit);
            Assert.All(devices.EnumerateArray(), d => Assert.True(d.TryGetProperty("uuid", out _)));
        }
        else
        {
            Assert.Equal((int)ExitCode.Failure, exit);
            Assert.StartsWith("nvml: ", nvml.GetProperty("reason").GetString(), StringComparison.Ordinal);
            Assert.Equal(0, devices.GetArrayLength());
            Assert.Equal($"guard: {nvml.GetProperty("reason").GetString()}", console.ErrorText.Trim());
        }
    }

    [Fact]
    public void PolicyCheckCountsActingRulesAsTheModeMakesThemAndWarnsOfAllowedPathsThatDoNotExist()
    {
        using var dir = new TempDir();
        string enforce = dir.File("enforce.toml", "mode = \"enforce\"\n");
        var console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["policy", "check", enforce], console));
        int acting = int.Parse(System.Text.RegularExpressions.Regex.Match(console.Out.ToString()!, @"(\d+) that act").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(acting > 0, console.Out.ToString());

        string audit = dir.File("audit.toml", "mode = \"audit\"\n\n[allow]\nexecutables = [\"/bin/sh\", \"/opt/nowhere/stress-fpu\"]\n");
        console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["policy", "check", audit], console));
        Assert.Contains($"mode audit, ", console.Out.ToString(), StringComparison.Ordinal);
        Assert.Contains($", 0 that act (audit mode: {acting} would act under enforce)", console.Out.ToString(), StringComparison.Ordinal);
        Assert.Equal([$"{audit}:4:allow.executables: warning: '/opt/nowhere/stress-fpu' does not exist on this host: it allows nothing here"],
            console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        string users = dir.File("users.toml", "[allow]\nusers = [\"root\", \"4242\",\n  \"nosuchuser\"]\n");
        console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["policy", "check", users], console));
        Assert.Equal([$"{users}:3:allow.users: warning: 'nosuchuser' is not a user on this host (not in /etc/passwd): it allows nothing here"],
            console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
