using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Jobs named by their cgroup, on the real kernel: stand-in Slurm jobs, a
/// pod, a container scope and systemd units, made under a cgroup of the
/// test's own. A job's first process is a shell moved into its cgroup after
/// its own exec, with no launcher (jobs.roots) above it, as slurmstepd or a
/// container runtime starts one. The miner stand-ins are /bin/sh copies
/// named t-rex (a miner name acted on inside jobs only) and xmrig (anywhere)
/// whose first act writes a marker: a marker means the stand-in ran.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class CgroupJobTests
{
    private const string PodUid = "1b2c3d4e_5f60_7182_9304_a5b6c7d8e9f0";
    private const string ContainerId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private const string NamedUnit = "guard-test-trainer.service";
    private const string UnnamedUnit = "guard-test-cron.service";

    /// <summary>A stand-in layout: where its processes run, its job's own cgroup (both below the test's cgroup), the job's id and kind.</summary>
    public sealed record Layout(string Below, string JobBelow, string Id, string Kind);

    private static readonly Layout[] Layouts =
    [
        new("X/job_778/step_0", "X/job_778", "slurm:778", "slurm"),
        new("slurm/uid_1000/job_780/step_batch", "slurm/uid_1000/job_780", "slurm:780", "slurm"),
        new("X/slurmstepd.scope/job_779/step_0/user/task_0", "X/slurmstepd.scope/job_779", "slurm:779", "slurm"),
        new($"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{PodUid}.slice/cri-containerd-{ContainerId}.scope",
            $"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{PodUid}.slice", "k8s-pod:1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0", "kubernetes"),
        new($"system.slice/docker-{ContainerId}.scope", $"system.slice/docker-{ContainerId}.scope", "container:0123456789ab", "container"),
        new($"system.slice/{NamedUnit}/worker", $"system.slice/{NamedUnit}", $"systemd:{NamedUnit}", "systemd"),
    ];

    private static readonly string PodBelow = Layouts[3].Below;

    /// <summary>The built-in policy with the named unit as a job, and <paramref name="more"/> laid over it.</summary>
    private static Policy PolicyNaming(string more = "") => Policies.Over($"[jobs]\nunits = [\"{NamedUnit}\"]\n{more}");

    private static SensorHarness Watch(Policy policy) => SensorHarness.Start(new SensorOptions { Policy = policy });

    private static JsonElement? JobOf(RecordedEvent e) =>
        e.Json.TryGetProperty("guard", out JsonElement g) && g.TryGetProperty("job", out JsonElement job) ? job : null;

    private static void AssertJob(RecordedEvent e, string id, string kind, string cgroup, string what)
    {
        Assert.True(JobOf(e) is not null, $"{what}: no guard.job in {e}");
        JsonElement job = JobOf(e)!.Value;
        Assert.True(id == job.GetProperty("id").GetString(), $"{what}: guard.job.id {job.GetProperty("id")}, not {id}");
        Assert.Equal(kind, job.GetProperty("kind").GetString());
        Assert.Equal(cgroup, job.GetProperty("cgroup").GetString());
    }

    private static void WaitUntil(Func<bool> condition, string what, int ms = 5000)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.ElapsedMilliseconds < ms, $"timed out waiting for {what}");
            Thread.Sleep(10);
        }
    }

    private static string Comm(int pid) => File.ReadAllText($"/proc/{pid}/comm").Trim();

    /// <summary>`STAND_IN -c 'echo ran > MARKER'; echo $? > MARKER.status`: the stand-in forked and exec'd by the shell.</summary>
    private static string RunStandIn(string standIn, string marker) => $"{standIn} -c 'echo ran > {marker}'; echo $? > {marker}.status";

    private static string StatusOf(string marker)
    {
        WaitUntil(() => File.Exists(marker + ".status") && File.ReadAllText(marker + ".status").EndsWith('\n'), $"the shell to report {marker}'s stand-in");
        return File.ReadAllText(marker + ".status").Trim();
    }

    [Fact]
    public void EveryLayoutNamesItsJobForProcessesExecdThereAndSeededFromProc()
    {
        using var cgroups = new TestCgroups();
        using var dir = new TempDir();
        string trex = dir.ShellCopy("t-rex");
        var seeded = new List<(Layout Layout, Process Process)>();
        var started = new List<Process>();
        try
        {
            foreach (Layout layout in Layouts)
            {
                Process p = cgroups.StartIn(cgroups.Make(layout.Below), "exec /bin/sleep 30");
                seeded.Add((layout, p));
                TestCgroups.Go(p);
            }
            foreach ((Layout _, Process p) in seeded)
                WaitUntil(() => Comm(p.Id) == "sleep", $"{p.Id} to exec sleep before the sensor starts");

            // miner-in-job kills without holding, so that each layout's kill leaves the next layouts running.
            using SensorHarness sensor = Watch(PolicyNaming("[rules]\nminer-in-job = \"kill\"\n"));
            var execd = new List<(Layout Layout, Process Process, string Marker)>();
            foreach (Layout layout in Layouts)
            {
                string marker = Path.Combine(dir.Path, layout.Id.Replace(':', '-'));
                Process p = cgroups.StartIn($"{cgroups.Top}/{layout.Below}", $"{RunStandIn(trex, marker)}; exec /bin/sleep 30");
                started.Add(p);
                execd.Add((layout, p, marker));
                TestCgroups.Go(p);
            }

            foreach ((Layout layout, Process p, string marker) in execd)
            {
                string cgroup = $"{cgroups.Top}/{layout.JobBelow}";
                RecordedEvent exec = sensor.WaitFor($"exec of sleep in {layout.Id}", e => e.Action == "exec" && e.Pid == p.Id && e.Process.GetProperty("name").GetString() == "sleep");
                AssertJob(exec, layout.Id, layout.Kind, cgroup, $"exec'd in {layout.Below}");
                // A shell with no launcher above it started it: a member from the kernel's first look.
                Assert.True(StatusOf(marker) == "137", $"t-rex in {layout.Id} was not killed at exec (exit {StatusOf(marker)})");
                Assert.False(File.Exists(marker), $"t-rex ran in {layout.Id}");
                RecordedEvent killed = sensor.WaitFor($"t-rex's exec in {layout.Id}", e => e.Action == "exec" && e.Process.GetProperty("name").GetString() == "t-rex" && JobOf(e)?.GetProperty("id").GetString() == layout.Id);
                AssertJob(killed, layout.Id, layout.Kind, cgroup, $"t-rex in {layout.Below}");
            }

            foreach ((Layout layout, Process p) in seeded)
            {
                p.Kill();
                RecordedEvent exit = sensor.WaitFor($"exit of the seeded sleep in {layout.Id}", e => e.Action == "exit" && e.Pid == p.Id);
                AssertJob(exit, layout.Id, layout.Kind, $"{cgroups.Top}/{layout.JobBelow}", $"seeded in {layout.Below}");
            }
        }
        finally
        {
            foreach (Process p in seeded.Select(s => s.Process).Concat(started))
                p.Dispose();
        }
    }

    [Fact]
    public void AMinerNameAShellStartsInAPodIsKilledAtExecAndThePodHeld()
    {
        using var cgroups = new TestCgroups();
        using var dir = new TempDir();
        string trex = dir.ShellCopy("t-rex");
        string marker = Path.Combine(dir.Path, "marker");
        string pod = $"{cgroups.Top}/{Layouts[3].JobBelow}";
        using Process shell = cgroups.StartIn(cgroups.Make(PodBelow), $"{RunStandIn(trex, marker)}; exec /bin/sleep 30");
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);
        TestCgroups.Go(shell);

        Assert.Equal("137", StatusOf(marker));
        Assert.False(File.Exists(marker), "t-rex ran in the pod");
        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "miner-in-job");
        Assert.Contains("killed by the kernel", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response")[0].GetString(), StringComparison.Ordinal);
        Assert.True(alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("in_job").GetBoolean());
        RecordedEvent held = sensor.WaitFor("quarantine of the pod", e => e.Action == "quarantine");
        Assert.Equal("success", held.Json.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal(pod, held.Json.GetProperty("guard").GetProperty("action").GetProperty("cgroup").GetString());
        Assert.True(cgroups.Frozen(pod), "the pod is not frozen");
    }

    [Fact]
    public void AUnitThePolicyDoesNotNameIsNoJobAndIsNeverFrozen()
    {
        using var cgroups = new TestCgroups();
        using var dir = new TempDir();
        string trex = dir.ShellCopy("t-rex");
        string xmrig = dir.ShellCopy("xmrig");
        string service = cgroups.Make($"system.slice/{UnnamedUnit}");
        string trexRan = Path.Combine(dir.Path, "trex"), xmrigRan = Path.Combine(dir.Path, "xmrig");
        using Process shell = cgroups.StartIn(service, $"{RunStandIn(trex, trexRan)}; {RunStandIn(xmrig, xmrigRan)}; exec /bin/sleep 30");
        using SensorHarness sensor = Watch(PolicyNaming());
        TestCgroups.Go(shell);

        // An in-job-only name is no miner outside a job: it runs, unjudged.
        Assert.Equal("0", StatusOf(trexRan));
        Assert.True(File.Exists(trexRan));
        RecordedEvent exec = sensor.WaitFor("t-rex's exec", e => e.Action == "exec" && e.Process.GetProperty("name").GetString() == "t-rex");
        Assert.Null(JobOf(exec));

        // A name killed anywhere is killed here too, and its response finds no job: the unit is not frozen.
        Assert.Equal("137", StatusOf(xmrigRan));
        RecordedEvent alert = sensor.WaitFor("xmrig's alert", e => e.Action == "known-miner");
        string[] response = [.. alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response").EnumerateArray().Select(r => r.GetString()!)];
        Assert.Contains("no job to hold: it ran outside any job", response);
        Thread.Sleep(300);
        Assert.DoesNotContain(sensor.Events, e => e.Action == "miner-in-job" || e.Action == "quarantine");
        Assert.False(cgroups.Frozen(service), $"{UnnamedUnit} was frozen");
        Assert.NotEqual('T', File.ReadAllText($"/proc/{shell.Id}/stat").Split(' ')[2][0]);
    }

    [Fact]
    public void AUnitThePolicyNamesIsAJobAndIsHeld()
    {
        using var cgroups = new TestCgroups();
        using var dir = new TempDir();
        string trex = dir.ShellCopy("t-rex");
        string marker = Path.Combine(dir.Path, "marker");
        string unit = cgroups.Make($"system.slice/{NamedUnit}");
        using Process shell = cgroups.StartIn(cgroups.Make($"system.slice/{NamedUnit}/worker"), $"{RunStandIn(trex, marker)}; exec /bin/sleep 30");
        using SensorHarness sensor = Watch(PolicyNaming());
        TestCgroups.Go(shell);

        Assert.Equal("137", StatusOf(marker));
        RecordedEvent held = sensor.WaitFor("quarantine of the unit", e => e.Action == "quarantine");
        Assert.Equal(unit, held.Json.GetProperty("guard").GetProperty("action").GetProperty("cgroup").GetString());
        Assert.True(cgroups.Frozen(unit));
    }

    [Fact]
    public void ACgroupMadeAndEnteredAMomentBeforeTheExecIsAJobAtOnce()
    {
        using var cgroups = new TestCgroups();
        using var dir = new TempDir();
        string trex = dir.ShellCopy("t-rex");
        string parent = cgroups.Make("slurm");
        using SensorHarness sensor = Watch(Policies.Over("[rules]\nminer-in-job = \"kill\"\n"));
        // Each shell makes a job cgroup, moves itself in and runs the stand-in at once: microseconds, not
        // 100 ms. Back to back, so a reader that rescans at most every 100 ms would miss the second; the
        // first execs in place, the second forks.
        string[] markers = [Path.Combine(dir.Path, "901"), Path.Combine(dir.Path, "902")];
        string script =
            $"mkdir {cgroups.DirectoryOf(parent)}/job_901 && echo $$ > {cgroups.DirectoryOf(parent)}/job_901/cgroup.procs && exec {trex} -c 'echo ran > {markers[0]}'";
        string forks =
            $"mkdir {cgroups.DirectoryOf(parent)}/job_902 && echo $$ > {cgroups.DirectoryOf(parent)}/job_902/cgroup.procs && {RunStandIn(trex, markers[1])}";
        using (Process first = Run.Start("/bin/sh", "-c", script))
        using (Process second = Run.Start("/bin/sh", "-c", forks))
        {
            Assert.True(first.WaitForExit(5000) && second.WaitForExit(5000));
            Assert.Equal(137, first.ExitCode);
        }
        Assert.Equal("137", StatusOf(markers[1]));
        Assert.False(markers.Any(File.Exists), "a stand-in ran in a cgroup made a moment before");
        foreach (string job in new[] { "901", "902" })
        {
            RecordedEvent exec = sensor.WaitFor($"t-rex's exec in job_{job}", e => e.Action == "exec" && e.Process.GetProperty("name").GetString() == "t-rex" && JobOf(e)?.GetProperty("id").GetString() == $"slurm:{job}");
            AssertJob(exec, $"slurm:{job}", "slurm", $"{parent}/job_{job}", $"job_{job}");
        }
    }

    [Fact]
    public void LeavingTheJobsCgroupDoesNotLeaveTheJob()
    {
        using var cgroups = new TestCgroups();
        using var dir = new TempDir();
        string trex = dir.ShellCopy("t-rex");
        string marker = Path.Combine(dir.Path, "marker");
        string stage = dir.File("stage.sh", $"read again\n{RunStandIn(trex, marker)}\nexec /bin/sleep 30\n");
        string pod = $"{cgroups.Top}/{Layouts[3].JobBelow}";
        using SensorHarness sensor = Watch(Policies.Over("[rules]\nminer-in-job = \"kill\"\n"));
        // Exec'd in the pod, then moved out of it (as a process with the rights to could move itself), then runs t-rex.
        using Process shell = cgroups.StartIn(cgroups.Make(PodBelow), $"exec /bin/sh {stage}");
        TestCgroups.Go(shell);
        sensor.WaitFor("the stage's exec in the pod", e => e.Action == "exec" && e.Pid == shell.Id && e.Args.Contains(stage));
        cgroups.Enter(shell.Id, cgroups.Top);
        shell.StandardInput.WriteLine("again");

        Assert.Equal("137", StatusOf(marker));
        RecordedEvent exec = sensor.WaitFor("t-rex's exec", e => e.Action == "exec" && e.Process.GetProperty("name").GetString() == "t-rex");
        AssertJob(exec, Layouts[3].Id, "kubernetes", pod, "t-rex outside its pod's cgroup");
    }

    [Fact]
    public void AProcessMovedThroughAJobsCgroupStaysInTheJob()
    {
        using var cgroups = new TestCgroups();
        using var dir = new TempDir();
        string trex = dir.ShellCopy("t-rex");
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = Watch(Policies.Over("[rules]\nminer-in-job = \"kill\"\n"));
        // Into the pod and straight out again, never forking or exec'ing there; then it runs t-rex.
        using Process shell = cgroups.StartIn(cgroups.Make(PodBelow), $"{RunStandIn(trex, marker)}; exec /bin/sleep 30");
        cgroups.Enter(shell.Id, cgroups.Top);
        TestCgroups.Go(shell);

        Assert.Equal("137", StatusOf(marker));
        RecordedEvent exec = sensor.WaitFor("t-rex's exec", e => e.Action == "exec" && e.Process.GetProperty("name").GetString() == "t-rex");
        AssertJob(exec, Layouts[3].Id, "kubernetes", $"{cgroups.Top}/{Layouts[3].JobBelow}", "t-rex after its shell passed through the pod");
    }

    [Fact]
    public void HandedOverEnforcementJudgesCgroupsAsTheSensorDoes()
    {
        using var cgroups = new TestCgroups();
        using var dir = new TempDir();
        string trex = dir.ShellCopy("t-rex");
        try
        {
            using (SensorHarness sensor = Watch(PolicyNaming()))
                Assert.True(sensor.Sensor.HandOverEnforcement() > 0);
            Assert.True(EnforcementKernel.Active);

            // Cgroups made after the handover: the pinned programs judge them by themselves.
            (string Below, string Status)[] cases =
            [
                (PodBelow, "137"),
                ("X/job_781/step_0", "137"),
                ($"system.slice/{NamedUnit}", "137"),
                ($"system.slice/{UnnamedUnit}", "0"),
            ];
            var shells = new List<Process>();
            try
            {
                foreach ((string below, string _) in cases)
                {
                    Process shell = cgroups.StartIn(cgroups.Make(below), $"{RunStandIn(trex, MarkerOf(below))}; exec /bin/sleep 30");
                    shells.Add(shell);
                    TestCgroups.Go(shell);
                }
                foreach ((string below, string status) in cases)
                {
                    string exited = StatusOf(MarkerOf(below));
                    Assert.True(status == exited, $"t-rex in {below} exited {exited}, not {status}");
                }
            }
            finally
            {
                shells.ForEach(s => s.Dispose());
            }

            string MarkerOf(string below) => Path.Combine(dir.Path, below.Replace('/', '_'));
        }
        finally
        {
            EnforcementKernel.Remove();
        }
    }
}
