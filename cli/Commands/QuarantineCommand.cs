using System.CommandLine;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;

namespace Guard.Cli.Commands;

/// <summary>`guard quarantine PID | --job ID`: hold a tree or a job for a person.</summary>
public static class QuarantineCommand
{
    private static readonly Argument<string?> Target = new("PID")
    {
        Description = "A pid or process.entity_id: it and its descendants are held",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private static readonly Option<string?> Job = new("--job")
    {
        Description = "Hold this job instead of a PID (slurm:123, k8s-pod:UID, container:ID, systemd:UNIT): its cgroup is frozen (default: the PID's tree, not a job)",
    };

    private static readonly Option<string?> Timeout = new("--timeout")
    {
        Description = "End the hold after this long (30m, 2h), as --then says; default: held until a person decides",
    };

    private static readonly Option<string> Then = new("--then")
    {
        Description = "What the timeout does: release or kill",
        DefaultValueFactory = _ => "release",
    };

    private static readonly Option<string?> Reason = new("--reason")
    {
        Description = "Why, for `guard status` and the action event (default: \"held from the command line\")",
    };

    private static readonly Option<string[]> GpuDevices = new("--gpu-device")
    {
        Description = "Deny opens of this device too: MAJOR:MINOR, MAJOR:* or a /dev path; default: NVIDIA devices from /proc/devices",
    };

    private static readonly Option<string> Output = ActionOutput.CreateOption("the ECS action event");

    public static Command Create(IConsole console)
    {
        var command = new Command("quarantine", "Hold a process tree (stopped) or a job (its cgroup frozen) with its network and GPU devices denied, until `guard release` or `guard kill`. Holds outlive the sensor.");
        command.Arguments.Add(Target);
        Then.AcceptOnlyFromAmong("release", "kill");
        foreach (Option option in new Option[] { Job, Timeout, Then, Reason, GpuDevices, Output })
            command.Options.Add(option);
        command.SetAction(parse => Run(parse, console));
        return command;
    }

    private static int Run(ParseResult parse, IConsole console)
    {
        NotPermittedException.ThrowUnlessMayAct("guard quarantine", Privileges.ToHold);
        string? text = parse.GetValue(Target);
        string? job = parse.GetValue(Job) is { } given ? Guard.Sensor.Processes.JobIds.Canonical(given) : null;
        if ((text is null) == (job is null))
            throw new UsageException("name a PID or a --job, one of them");
        TimeSpan? timeout = null;
        if (parse.GetValue(Timeout) is { } t)
        {
            if (!ValueParsers.TryParseDuration(t, out TimeSpan parsed))
                throw new UsageException($"--timeout: '{t}' is not a duration (try 30m, 2h)");
            timeout = parsed;
        }
        else if (parse.GetResult(Then) is { Implicit: false })
        {
            throw new UsageException("--then needs a --timeout");
        }
        ProcessTarget? target = text is null ? null : ValueParsers.ParseTarget(text);
        IReadOnlyList<GpuDevice> gpuDevices = ValueParsers.ParseGpuDevices(parse.GetValue(GpuDevices));
        Privileges.Require("guard quarantine");

        var request = new QuarantineRequest
        {
            Reason = parse.GetValue(Reason) ?? "held from the command line",
            Timeout = timeout,
            OnTimeout = parse.GetValue(Then) == "kill" ? QuarantineExpiry.Kill : QuarantineExpiry.Release,
            GpuDevices = gpuDevices,
        };
        var quarantines = new Quarantines(KernelMounts.FindCgroup2Root());
        ProcessEntry? process = target is { } p ? new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames()).Load(p.Pid) : null;
        QuarantineOutcome outcome = target is { } named ? quarantines.HoldTree(named, request) : quarantines.HoldJob(job!, request);

        if (!ActionOutput.Report(console, parse, Output, outcome.ToActionEvent(process)) && outcome.Done)
            console.Out.WriteLine($"guard: {Printable.Of(outcome.Message)}");
        if (!outcome.Done)
            console.Error.WriteLine($"guard: refused to quarantine {text ?? job}: {Printable.Of(outcome.Message)}");
        return outcome.Done ? (int)ExitCode.Success : (int)ExitCode.Failure;
    }
}
