using System.CommandLine;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Response;

namespace Guard.Cli.Commands;

/// <summary>`guard confine show JOB [--policy FILE]`: what confines a job.</summary>
public static class ConfineCommand
{
    private static readonly Argument<string> Job = new("JOB") { Description = "The job as Guard names it: slurm:123, k8s-pod:UID, container:ID, systemd:UNIT, tree:ENTITY_ID or tree:PID" };

    private static readonly Option<string?> PolicyFile = new("--policy")
    {
        Description = $"Policy file laid over the built-in one (default: {Policy.SystemPath} when it exists)",
    };

    public static Command Create(IConsole console)
    {
        var confine = new Command("confine", "Show how [[confine]] sections confine jobs.");
        var show = new Command("show", "Print a job's effective rules (section, mode, allow list, resolvers), whether the kernel confines it now, and what its DNS answers allow now. Exit 1 for a job not on this host.");
        show.Arguments.Add(Job);
        show.Options.Add(PolicyFile);
        show.SetAction(parse => Show(parse.GetValue(Job)!, parse.GetValue(PolicyFile), console));
        confine.Subcommands.Add(show);
        return confine;
    }

    // A PolicyException reaches GuardCli, which prints each error and exits 2.
    private static int Show(string job, string? policyPath, IConsole console)
    {
        Privileges.Require("guard confine show");
        Policy policy = PolicyLoader.Load(policyPath);
        job = Guard.Sensor.Processes.JobIds.Canonical(job);
        List<string>? lines = JobConfinement.Describe(job, policy, KernelMounts.FindCgroup2Root());
        if (lines is null)
        {
            console.Error.WriteLine($"guard confine show: no job {job} on this host");
            return (int)ExitCode.Failure;
        }
        foreach (string line in lines)
            console.Out.WriteLine(line);
        return (int)ExitCode.Success;
    }
}
