using System.CommandLine;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Response;

namespace Guard.Cli.Commands;

/// <summary>`guard release PID | --job ID | --all`: undo a quarantine exactly.</summary>
public static class ReleaseCommand
{
    private static readonly Argument<string?> Target = new("PID")
    {
        Description = "Any process of the hold (a pid or process.entity_id)",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private static readonly Option<string?> Job = new("--job")
    {
        Description = "The held job, as `guard status` names it (default: the hold the PID is in)",
    };

    private static readonly Option<bool> All = new("--all")
    {
        Description = "Every hold on this host",
    };

    private static readonly Option<string> Output = ActionOutput.CreateOption("one ECS action event per hold released");

    public static Command Create(IConsole console)
    {
        var command = new Command("release", "End a quarantine: deny programs detached, the job thawed or continued, exactly as it was.");
        command.Arguments.Add(Target);
        foreach (Option option in new Option[] { Job, All, Output })
            command.Options.Add(option);
        command.SetAction(parse => Run(parse, console));
        return command;
    }

    private static int Run(ParseResult parse, IConsole console)
    {
        NotPermittedException.ThrowUnlessMayAct("guard release", Privileges.ToHold);
        string? text = parse.GetValue(Target);
        string? job = parse.GetValue(Job) is { } given ? Guard.Sensor.Processes.JobIds.Canonical(given) : null;
        bool all = parse.GetValue(All);
        if ((text is null ? 0 : 1) + (job is null ? 0 : 1) + (all ? 1 : 0) != 1)
            throw new UsageException("name a PID, a --job or --all, one of them");
        ProcessTarget? target = text is null ? null : ValueParsers.ParseTarget(text);
        Privileges.Require("guard release");

        var quarantines = new Quarantines(KernelMounts.FindCgroup2Root());
        // Holds whose processes are all gone end here too: `release --all` leaves nothing pinned.
        quarantines.Prune();
        IReadOnlyList<QuarantineHold> held = quarantines.List();
        IReadOnlyList<QuarantineHold> chosen = all ? held
            : target is { } t ? [.. held.Where(h => h.Pids.Contains(t.Pid))]
            : [.. held.Where(h => h.Name == job)];
        if (chosen.Count == 0)
        {
            console.Error.WriteLine(all ? "guard: nothing is quarantined" : $"guard: {text ?? job} is not quarantined");
            return all ? (int)ExitCode.Success : (int)ExitCode.Failure;
        }
        foreach (QuarantineHold hold in chosen)
        {
            QuarantineOutcome outcome = quarantines.Release(hold);
            if (!ActionOutput.Report(console, parse, Output, outcome.ToActionEvent(null)))
                console.Out.WriteLine($"guard: {Printable.Of(outcome.Message)}");
        }
        return (int)ExitCode.Success;
    }
}
