using System.CommandLine;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;

namespace Guard.Cli.Commands;

public static class KillCommand
{
    private static readonly Argument<string> Target = new("PID")
    {
        Description = "A pid, or a process.entity_id from an event (which also pins the start time: a reused pid is refused)",
    };

    private static readonly Option<bool> Tree = new("--tree")
    {
        Description = "Also kill every descendant, re-parented or not (recorded at fork), stopped first so none escapes by forking",
    };

    private static readonly Option<bool> Job = new("--job")
    {
        Description = "Kill its whole job through the job cgroup's cgroup.kill",
    };

    private static readonly Option<string> Output = ActionOutput.CreateOption("the ECS action event");

    public static Command Create(IConsole console)
    {
        var command = new Command("kill", "Kill a process (SIGKILL through a pidfd), its tree, or its job. Refuses PID 1, kernel threads, running Guard sensors and pids that changed hands.");
        command.Arguments.Add(Target);
        foreach (Option option in new Option[] { Tree, Job, Output })
            command.Options.Add(option);
        command.SetAction(parse => Run(parse, console));
        return command;
    }

    private static int Run(ParseResult parse, IConsole console)
    {
        NotPermittedException.ThrowUnlessMayAct("guard kill", Privileges.ToKill);
        ProcessTarget target = ValueParsers.ParseTarget(parse.GetValue(Target)!);
        if (parse.GetValue(Tree) && parse.GetValue(Job))
            throw new UsageException("--tree and --job cannot be given together");
        KillScope scope = parse.GetValue(Job) ? KillScope.Job : parse.GetValue(Tree) ? KillScope.Tree : KillScope.Process;

        // Described before the kill: afterwards there is nothing left in /proc to read.
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        ProcessEntry? process = table.Load(target.Pid);
        string cgroupRoot = KernelMounts.FindCgroup2Root();
        var quarantines = new Quarantines(cgroupRoot);
        // A held tree or job is ended as a whole: its members may no longer be one tree.
        if (scope != KillScope.Process)
        {
            quarantines.Prune();
            if (quarantines.Holding(target.Pid) is { } held)
                return KillHeld(parse, console, quarantines, held, target, process);
        }
        // A unit is a job only where the policy names it, for a person's --job as for the rules.
        CgroupJobs? jobs = scope == KillScope.Job ? new CgroupJobs(PolicyLoader.Load(null).Jobs.Units) : null;
        KillOutcome outcome = new ProcessKiller(cgroupRoot, jobs).Kill(target, scope);

        if (!ActionOutput.Report(console, parse, Output, outcome.ToActionEvent(process)) && outcome.Done)
            console.Out.WriteLine($"guard: {Printable.Of(outcome.Message)}");
        if (!outcome.Done)
            console.Error.WriteLine($"guard: refused to kill {target}: {Printable.Of(outcome.Message)}");
        return outcome.Done ? (int)ExitCode.Success : (int)ExitCode.Failure;
    }

    private static int KillHeld(ParseResult parse, IConsole console, Quarantines quarantines, QuarantineHold held, ProcessTarget target, ProcessEntry? process)
    {
        using (Pidfd? checkedTarget = ProcessKiller.OpenChecked(target, out string refusal))
        {
            if (checkedTarget is null)
            {
                console.Error.WriteLine($"guard: refused to kill {target}: {refusal}");
                return (int)ExitCode.Failure;
            }
        }
        QuarantineOutcome outcome = quarantines.Kill(held);
        if (!ActionOutput.Report(console, parse, Output, outcome.ToActionEvent(process)))
            console.Out.WriteLine($"guard: {Printable.Of(outcome.Message)}");
        return outcome.Done ? (int)ExitCode.Success : (int)ExitCode.Failure;
    }
}
