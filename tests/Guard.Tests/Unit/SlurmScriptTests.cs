using System.Diagnostics;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// packaging/slurm/guard-slurm.sh against what it reads and calls: no Slurm
/// controller runs here, so scancel, scontrol and guard are stand-ins on PATH
/// that record their arguments, guard's status being a real `guard status -o
/// json` document's shape. What is tested is the script's own judgement: it
/// cancels only a job Guard holds, only when told, and releases at epilog.
/// </summary>
public sealed class SlurmScriptTests : IDisposable
{
    private const string Status = """
        {"quarantined":[{"job":"slurm:4242","mode":"cgroup","cgroup":"/system.slice/slurmstepd.scope/job_4242","pids":[11,12],"held":true,"frozen":true},
        {"job":"k8s-pod:1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0","mode":"cgroup","pids":[13],"held":true},{"job":"slurm:12;reboot","mode":"tree","pids":[14],"held":true}],"programs":[],"sensors":[]}
        """;

    private readonly TempDir dir = new();

    public SlurmScriptTests()
    {
        foreach (string tool in new[] { "scancel", "scontrol", "guard" })
        {
            string body = tool == "guard"
                ? $"#!/bin/sh\necho \"guard $*\" >> \"{dir.Path}/calls\"\n[ \"$1\" = status ] && cat <<'JSON'\n{Status}\nJSON\nexit 0\n"
                : $"#!/bin/sh\necho \"{tool} $*\" >> \"{dir.Path}/calls\"\n";
            File.WriteAllText(Path.Combine(dir.Path, tool), body);
            File.SetUnixFileMode(Path.Combine(dir.Path, tool), (UnixFileMode)0b111_101_101);
        }
    }

    public void Dispose() => dir.Dispose();

    private (int Exit, string Said, string[] Calls) Run(Dictionary<string, string>? environment, params string[] args)
    {
        var env = new Dictionary<string, string> { ["PATH"] = $"{dir.Path}:/usr/bin:/bin" };
        foreach ((string k, string v) in environment ?? [])
            env[k] = v;
        using Process p = Guard.Tests.Support.Run.StartWith(env, Path.Combine(RepoPaths.Root, "packaging", "slurm", "guard-slurm.sh"), args);
        string said = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000));
        string calls = Path.Combine(dir.Path, "calls");
        string[] lines = File.Exists(calls) ? File.ReadAllLines(calls) : [];
        File.Delete(calls);
        return (p.ExitCode, said, [.. lines.Where(l => !l.StartsWith("guard status", StringComparison.Ordinal))]);
    }

    [Fact]
    public void ListNamesOnlyTheSlurmJobsGuardHolds()
    {
        (int exit, string said, _) = Run(null, "list");
        Assert.Equal(0, exit);
        Assert.Equal("4242\n", said);
    }

    [Fact]
    public void CancelCancelsAHeldJobOnAnAdministratorsWordAndNothingElse()
    {
        (int exit, string said, string[] calls) = Run(new() { ["SUDO_USER"] = "alice" }, "cancel", "4242", "miner found");
        Assert.True(exit == 0, said);
        Assert.Equal(["scontrol update JobId=4242 Comment=guard: miner found (by alice)", "scancel --full --signal=KILL 4242", "scancel 4242"], calls);

        (exit, said, calls) = Run(null, "cancel", "999");
        Assert.Equal(1, exit);
        Assert.Contains("Guard holds no Slurm job 999", said, StringComparison.Ordinal);
        Assert.Empty(calls);

        (exit, _, calls) = Run(null, "cancel", "12;reboot");
        Assert.Equal(2, exit);
        Assert.Empty(calls);
    }

    [Fact]
    public void TheEpilogReleasesAHoldSlurmHasEndedAndOnlyThat()
    {
        (int exit, string said, string[] calls) = Run(new() { ["SLURM_JOB_ID"] = "4242" });
        Assert.True(exit == 0, said);
        Assert.Equal(["guard release --job slurm:4242"], calls);

        (exit, _, calls) = Run(new() { ["SLURM_JOB_ID"] = "7" });
        Assert.Equal(0, exit);
        Assert.Empty(calls);
    }
}
