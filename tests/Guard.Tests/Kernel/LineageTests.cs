using System.Diagnostics;
using System.Globalization;
using Guard.Cli;
using Guard.Sensor;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Kills, holds and jobs by recorded lineage, against descendants that left
/// their tree by parent pid: a setsid grandchild whose parent exited, a child
/// made with clone(CLONE_PARENT), and a tree that forks and hops while it is
/// being stopped. Stand-ins are this test's own copies of /bin/sleep and
/// small C programs (Fixtures/standins); every process they make is signalled
/// only through a pidfd checked to be it, and killed at the end whatever happened.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class LineageTests : IDisposable
{
    private readonly TempDir dir = new();
    private readonly OwnProcesses own = new();
    private readonly List<Process> started = [];
    private string? stormCgroup;

    public LineageTests()
    {
        KernelRequirements.Check();
        // As after any `guard watch` on this host: lineage is recorded from here on.
        LineageKernel.Ensure().Dispose();
    }

    [Fact]
    public void TreeKillTakesTheSetsidGrandchildItsParentLeftBehind()
    {
        (Process root, int grandchild, long ticks) = StartSetsidTree();

        (int code, TestConsole kill) = Guard("kill", Text(root.Id), "--tree");

        Assert.True(code == 0, kill.ErrorText);
        Assert.True(root.WaitForExit(5000));
        Assert.Equal(137, root.ExitCode);
        Run.WaitFor(() => Gone(grandchild, ticks), "the re-parented grandchild to be killed");
        Assert.Contains($"killed 2 processes of the tree of {root.Id}", kill.Out.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TreeHoldHoldsTheSetsidGrandchildItsParentLeftBehind()
    {
        (Process root, int grandchild, _) = StartSetsidTree();

        (int code, TestConsole hold) = Guard("quarantine", Text(root.Id));

        Assert.True(code == 0, hold.ErrorText);
        Assert.Equal('T', Run.State(grandchild));
        Assert.Equal([root.Id, grandchild], HeldWith(root.Id).Order());
        (code, TestConsole release) = Guard("release", Text(root.Id));
        Assert.True(code == 0, release.ErrorText);
        Run.WaitFor(() => Run.State(grandchild) == 'S', "the grandchild to run again once released");
    }

    [Fact]
    public void TreeKillTakesTheChildItsRootMadeWithCloneParent()
    {
        (int root, int child, long childTicks) = StartCloneParentTree();

        (int code, TestConsole kill) = Guard("kill", Text(root), "--tree");

        Assert.True(code == 0, kill.ErrorText);
        Run.WaitFor(() => Gone(child, childTicks), "the CLONE_PARENT child to be killed");
        Assert.Contains($"killed 2 processes of the tree of {root}", kill.Out.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TreeHoldHoldsTheChildItsRootMadeWithCloneParent()
    {
        (int root, int child, _) = StartCloneParentTree();

        (int code, TestConsole hold) = Guard("quarantine", Text(root));

        Assert.True(code == 0, hold.ErrorText);
        Assert.Equal('T', Run.State(child));
        Assert.Equal([root, child], HeldWith(root).Order());
    }

    [Fact]
    public void AForkStormUnderTheTreeBeingKilledLeavesNoSurvivor()
    {
        string storm = dir.Compile("storm");
        string ready = Path.Combine(dir.Path, "ready");
        // In a cgroup of the test's own only so that cleanup, whatever happened, is one write to cgroup.kill.
        stormCgroup = Path.Combine(KernelMounts.FindCgroup2Root(), $"guard-test-storm-{Guid.NewGuid():N}"[..32]);
        Directory.CreateDirectory(stormCgroup);
        int root = StartBehindAShell($"echo $$ > {stormCgroup}/cgroup.procs; {storm} {ready}");
        Run.WaitFor(() => File.Exists(ready), "the storm to be under way", 10_000);

        (int code, TestConsole kill) = Guard("kill", Text(root), "--tree");

        Assert.True(code == 0, kill.ErrorText);
        Assert.DoesNotContain("still growing", kill.Out.ToString(), StringComparison.Ordinal);
        Thread.Sleep(500); // long enough for anything the kill missed to show itself by forking on
        List<int> survivors = OwnProcesses.Running(storm);
        Assert.True(survivors.Count == 0, $"{survivors.Count} of the storm survived ({kill.Out.ToString()!.Trim()}): {string.Join(' ', survivors)}");
    }

    [Fact]
    public void ACloneParentChildStaysInItsCreatorsJobWithTheSensorAndAfterIt()
    {
        string cloneParent = dir.Compile("clone-parent");
        string rigel = dir.ShellCopy("rigel"); // a miner name the kernel kills inside a job only
        Policy policy = Policies.Over("[rules]\nminer-in-job = \"kill\"\n");
        using (SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy }))
        {
            (int child, string marker) = RunCloneParentJob(cloneParent, rigel, "watched");
            Assert.False(File.Exists(marker), "the CLONE_PARENT child ran a miner name outside its creator's job");
            RecordedEvent alert = sensor.WaitFor("the miner-in-job alert", e => e.Action == "miner-in-job" && e.Pid == child);
            Assert.Equal("alert", alert.Json.GetProperty("event").GetProperty("kind").GetString());
        }

        // Handed over to the pinned programs: they keep jobs the same way.
        string policyFile = dir.File("policy.toml", "[rules]\nminer-in-job = \"kill\"\n");
        (int code, TestConsole watch) = Guard("watch", "--duration", "500ms", "--output", "json", "--type", "exec", "--policy", policyFile);
        Assert.True(code == 0 && EnforcementKernel.Active, watch.ErrorText);
        (_, string pinnedMarker) = RunCloneParentJob(cloneParent, rigel, "pinned");
        Assert.False(File.Exists(pinnedMarker), "with the sensor stopped, the CLONE_PARENT child ran a miner name outside its creator's job");
    }

    /// <summary>
    /// A root whose subshell starts a grandchild in a session of its own and
    /// exits: the grandchild's parent is init (or a subreaper) now, not below the root.
    /// </summary>
    private (Process Root, int Grandchild, long GrandchildTicks) StartSetsidTree()
    {
        string sleep = dir.ExecutableCopy("/bin/sleep", "lineage-sleep");
        string pidfile = Path.Combine(dir.Path, "grandchild");
        // The grandchild names itself ($$ of the shell that becomes it), however setsid forks.
        string grandchild = $"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec {sleep} 120";
        Process root = Start("/bin/sh", "-c", $"( setsid /bin/sh -c '{grandchild}' & ); exec {sleep} 120");
        int pid = ReadPid(pidfile);
        long ticks = own.Add(pid);
        Run.WaitFor(() => !BelowByParent(root.Id, pid), "the grandchild to be re-parented away from the root");
        return (root, pid, ticks);
    }

    /// <summary>A root (clone-parent) whose child was made with CLONE_PARENT: by parent pid that child is the root's sibling, a child of the shell above it.</summary>
    private (int Root, int Child, long ChildTicks) StartCloneParentTree()
    {
        string cloneParent = dir.Compile("clone-parent");
        string sleep = dir.ExecutableCopy("/bin/sleep", "lineage-sleep");
        string pidfile = Path.Combine(dir.Path, "child");
        int root = StartBehindAShell($"{cloneParent} {pidfile} {sleep} 120");
        int child = ReadPid(pidfile);
        long ticks = own.Add(child);
        Assert.False(BelowByParent(root, child), "by parent pid the CLONE_PARENT child is not below its creator");
        return (root, child, ticks);
    }

    /// <summary>
    /// python3 (a job root) becomes clone-parent, still the job's root, whose
    /// CLONE_PARENT child (the shell's, by parent pid) runs the miner-named
    /// stand-in, which writes a marker if it runs. Returns the child and the marker.
    /// </summary>
    private (int Child, string Marker) RunCloneParentJob(string cloneParent, string rigel, string tag)
    {
        string marker = Path.Combine(dir.Path, tag);
        string pidfile = marker + ".pid";
        string script = $"import os; os.execv('{cloneParent}', ['{cloneParent}', '{pidfile}', '{rigel}', '-c', 'echo ran > {marker}'])";
        StartBehindAShell($"{Run.Python} -c \"{script}\"");
        int child = ReadPid(pidfile);
        Run.WaitFor(() => !ProcfsReader.TryReadStat(child, out _) || Run.State(child) == 'Z', "the CLONE_PARENT child to end");
        return (child, marker);
    }

    /// <summary>Starts <paramref name="command"/> in the background of a shell of this test's; returns its pid, kept.</summary>
    private int StartBehindAShell(string command)
    {
        Process shell = Start("/bin/sh", "-c", $"{command} & echo $!; wait");
        int pid = int.Parse(shell.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
        own.Add(pid);
        return pid;
    }

    private Process Start(string file, params string[] args)
    {
        Process p = Run.Start(file, args);
        started.Add(p);
        return p;
    }

    private static string Text(int pid) => pid.ToString(CultureInfo.InvariantCulture);

    private static (int Code, TestConsole Console) Guard(params string[] args)
    {
        var console = new TestConsole();
        return (GuardCli.Run(args, console), console);
    }

    private static int[] HeldWith(int pid) =>
        [.. new Quarantines(KernelMounts.FindCgroup2Root()).Holding(pid)?.Pids ?? []];

    private static int ReadPid(string pidfile)
    {
        Run.WaitFor(() => File.Exists(pidfile), $"{Path.GetFileName(pidfile)} to be written");
        return int.Parse(File.ReadAllText(pidfile).Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>Whether <paramref name="ancestor"/> is on <paramref name="pid"/>'s chain of parent pids.</summary>
    private static bool BelowByParent(int ancestor, int pid)
    {
        for (int at = pid; at > 1 && ProcfsReader.TryReadStat(at, out ProcfsStat s); at = s.ParentPid)
        {
            if (s.ParentPid == ancestor)
                return true;
        }
        return false;
    }

    /// <summary>The process is gone, a zombie, or its pid belongs to another now.</summary>
    private static bool Gone(int pid, long startTicks) =>
        !ProcfsReader.TryReadStat(pid, out ProcfsStat s) || s.StartTicks != startTicks || Run.State(pid) == 'Z';

    public void Dispose()
    {
        // Whatever failed above: nothing stays held, stopped, pinned or running.
        GuardCli.Run(["release", "--all"], new TestConsole());
        EnforcementKernel.Remove();
        own.Dispose();
        if (stormCgroup is not null && Directory.Exists(stormCgroup))
        {
            // A storm the kill missed forks on faster than pids can be read: its cgroup ends it whole.
            File.WriteAllText(Path.Combine(stormCgroup, "cgroup.kill"), "1");
            for (int i = 0; i < 100 && File.ReadAllText(Path.Combine(stormCgroup, "cgroup.procs")).Length > 0; i++)
                Thread.Sleep(50);
            Directory.Delete(stormCgroup);
        }
        foreach (Process p in started)
        {
            if (!p.HasExited)
                p.Kill();
            p.WaitForExit(5000);
            p.Dispose();
        }
        dir.Dispose();
    }
}
