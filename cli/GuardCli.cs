using System.CommandLine;
using Guard.Cli.Commands;
using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;

namespace Guard.Cli;

/// <summary>Builds the command tree and runs it: parse, call the sensor, print.</summary>
public static class GuardCli
{
    public static string Version => typeof(GuardCli).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public static RootCommand Build(IConsole console)
    {
        var root = new RootCommand("Guard: stops GPU training jobs from mining cryptocurrency.");
        root.Subcommands.Add(WatchCommand.Create(console));
        root.Subcommands.Add(KillCommand.Create(console));
        root.Subcommands.Add(QuarantineCommand.Create(console));
        root.Subcommands.Add(ReleaseCommand.Create(console));
        root.Subcommands.Add(StatusCommand.Create(console));
        root.Subcommands.Add(GpuCommand.Create(console));
        root.Subcommands.Add(DetachCommand.Create(console));
        root.Subcommands.Add(PolicyCommand.Create(console));
        root.Subcommands.Add(ConfineCommand.Create(console));
        foreach (Command approval in ApprovalCommands.Create(console))
            root.Subcommands.Add(approval);
        root.Subcommands.Add(VersionCommand.Create(console));
        root.Subcommands.Add(CompletionCommand.Create(console, () => root));
        root.Subcommands.Add(CompletionCommand.CreateManPage(console, () => root));
        HelpExamples.Install(root);
        return root;
    }

    public static int Run(string[] args, IConsole console, CancellationToken cancellation = default)
    {
        RootCommand root = Build(console);
        ParseResult parse = root.Parse(UsageErrors.Rewrite(args));
        if (parse.Errors.Count > 0)
        {
            // One line: the error names the command's --help where that helps.
            console.Error.WriteLine($"guard: {Printable.Of(UsageErrors.Describe(parse))}");
            return (int)ExitCode.Usage;
        }
        try
        {
            var config = new InvocationConfiguration
            {
                Output = console.Out,
                Error = console.Error,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
            };
            return parse.InvokeAsync(config, cancellation).GetAwaiter().GetResult();
        }
        catch (NotPermittedException e)
        {
            console.Error.WriteLine($"guard: {e.Message}");
            return (int)ExitCode.NotPermitted;
        }
        catch (UsageException e)
        {
            console.Error.WriteLine($"guard: {Printable.Of(e.Message)}");
            return (int)ExitCode.Usage;
        }
        catch (PolicyException e)
        {
            // One line per problem, file:line:key: reason; nothing was loaded.
            foreach (PolicyError error in e.Errors)
                console.Error.WriteLine(error.ToString());
            return (int)ExitCode.Usage;
        }
        catch (ConfigException e)
        {
            // As the policy's: one line per problem, file:line:key: reason; nothing was started.
            foreach (ConfigError error in e.Errors)
                console.Error.WriteLine(error.ToString());
            return (int)ExitCode.Usage;
        }
        catch (SensorException e)
        {
            console.Error.WriteLine($"guard: {Printable.Of(e.Message)}");
            return (int)ExitCode.Failure;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A file the host would not let us read or write (/proc, cgroupfs, bpffs): one line, never a trace.
            console.Error.WriteLine($"guard: {Printable.Of(e.Message)}");
            return (int)ExitCode.Failure;
        }
    }
}
