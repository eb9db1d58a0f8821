using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Cli;
using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// `guard kill` on processes these tests start. Refusals of PID 1 and of this
/// very process are tested on the decision alone, so a broken refusal cannot
/// send anything; the kernel thread refusal runs whole on PID 2, which
/// ignores signals anyway.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class KillCommandTests
{
    private static long StartTicks(int pid)
    {
        Assert.True(ProcfsReader.TryReadStat(pid, out ProcfsStat stat));
        return stat.StartTicks;
    }

    private static string EntityId(int pid) => EntityIds.ForThisBoot().For(pid, StartTicks(pid));

    private static bool Gone(Process p) => p.WaitForExit(5000);


    [Fact]
    public void KillRefusesAReusedPidAndKillsTheProcessItNamed()
    {
        KernelRequirements.Check();
        using Process sleeper = Run.Start("/bin/sleep", "30");
        long ticks = StartTicks(sleeper.Id);
        string stale = $"{EntityIds.ForThisBoot().BootPrefix}-{ticks - 1}-{sleeper.Id}";
        var console = new TestConsole();

        Assert.Equal((int)ExitCode.Failure, GuardCli.Run(["kill", stale], console));
        Assert.Contains("now belongs to another process", console.ErrorText, StringComparison.Ordinal);
        Assert.False(sleeper.HasExited, "a refused kill sends nothing");

        var otherBoot = new TestConsole();
        Assert.Equal((int)ExitCode.Failure, GuardCli.Run(["kill", $"0123456789ab-{ticks}-{sleeper.Id}"], otherBoot));
        Assert.Contains("another boot", otherBoot.ErrorText, StringComparison.Ordinal);
        Assert.False(sleeper.HasExited);

        var json = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["kill", EntityId(sleeper.Id), "--output", "json"], json));
        Assert.True(Gone(sleeper));
        Assert.Equal(137, sleeper.ExitCode);
        JsonElement action = JsonDocument.Parse(json.JsonLines().Single()).RootElement;
        Assert.Equal("kill", action.GetProperty("event").GetProperty("action").GetString());
        Assert.Equal("success", action.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal(sleeper.Id, action.GetProperty("process").GetProperty("pid").GetInt32());
        Assert.Equal("cli", action.GetProperty("guard").GetProperty("action").GetProperty("ordered_by").GetProperty("via").GetString());
        Assert.Equal([sleeper.Id], action.GetProperty("guard").GetProperty("action").GetProperty("pids").EnumerateArray().Select(p => p.GetInt32()));
    }

    [Fact]
    public void PidOneAndThisProcessAreRefusedByTheDecisionItself()
    {
        Assert.True(ProcfsReader.TryReadStat(1, out ProcfsStat init));
        Assert.Contains("PID 1", ProcessKiller.Refusal(init, null, Environment.ProcessId), StringComparison.Ordinal);
        Assert.True(ProcfsReader.TryReadStat(Environment.ProcessId, out ProcfsStat self));
        Assert.Contains("this guard process", ProcessKiller.Refusal(self, null, Environment.ProcessId), StringComparison.Ordinal);
        using Process other = Run.Start("/bin/sleep", "5");
        Assert.True(ProcfsReader.TryReadStat(other.Id, out ProcfsStat ordinary));
        Assert.Null(ProcessKiller.Refusal(ordinary, ordinary.StartTicks, Environment.ProcessId));
        other.Kill();
    }

    [Fact]
    public void KernelThreadsAndMissingPidsAreRefusedWithAReason()
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Failure, GuardCli.Run(["kill", "2"], console));
        Assert.Contains("kernel thread", console.ErrorText, StringComparison.Ordinal);

        int missing = int.Parse(File.ReadAllText("/proc/sys/kernel/pid_max").Trim(), CultureInfo.InvariantCulture) + 1;
        console = new TestConsole();
        Assert.Equal((int)ExitCode.Failure, GuardCli.Run(["kill", missing.ToString(CultureInfo.InvariantCulture)], console));
        Assert.Contains($"no process {missing}", console.ErrorText, StringComparison.Ordinal);
    }

    [Fact]
    public void TreeKillTakesTheProcessAndEveryLiveDescendant()
    {
        KernelRequirements.Check();
        using Process top = Run.Start("/bin/sh", "-c", "/bin/sh -c 'sleep 60 & sleep 60 & wait' & sleep 60 & wait");
        int[] descendants = [];
        for (int i = 0; i < 50 && descendants.Length < 4; i++)
        {
            Thread.Sleep(50);
            descendants = Descendants(top.Id);
        }
        Assert.Equal(4, descendants.Length);

        var console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["kill", top.Id.ToString(CultureInfo.InvariantCulture), "--tree"], console));
        Assert.True(Gone(top));
        Thread.Sleep(200);
        Assert.All(descendants, pid => Assert.False(File.Exists($"/proc/{pid}/stat") && !IsZombie(pid), $"descendant {pid} survived"));
        Assert.Contains("killed 5 processes", console.Out.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AWatchRegisteredElsewhereIsStillRefusedAsTheOwnerOfItsPinnedEnforcement()
    {
        KernelRequirements.Check();
        using var elsewhere = new TempDir();
        // Its registration lands where this `guard kill` does not look; its pins, under the same pin root, name it.
        using Process watch = Run.StartWith(
            new Dictionary<string, string> { ["GUARD_RUN_DIR"] = elsewhere.Path },
            Run.GuardExecutable, "watch", "--duration", "60s", "--output", "json", "--type", "alert");
        _ = watch.StandardOutput.ReadToEndAsync();
        _ = watch.StandardError.ReadToEndAsync();
        try
        {
            long ticks = StartTicks(watch.Id);
            Run.WaitFor(() => SensorPins.Owners().Contains((watch.Id, ticks)), "the watch to pin its enforcement", 30_000);
            Assert.False(RunningSensors.IsRunning(watch.Id, ticks), "the premise: registered where this kill does not look");

            var console = new TestConsole();
            Assert.Equal((int)ExitCode.Failure, GuardCli.Run(["kill", watch.Id.ToString(CultureInfo.InvariantCulture)], console));
            Assert.Contains($"{watch.Id} is a running Guard sensor", console.ErrorText, StringComparison.Ordinal);
            Assert.False(watch.WaitForExit(500), "a refused kill sends nothing");
            Assert.True(OwnProcesses.Signal(watch.Id, ticks, 15));
            Assert.True(watch.WaitForExit(15_000));
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            EnforcementKernel.Remove();
        }
    }

    [Fact]
    public void ARunningWatchIsRefusedAndItsRegistrationGoesWithIt()
    {
        KernelRequirements.Check();
        using Process watch = Run.Start(Run.GuardExecutable, "watch", "--duration", "60s", "--output", "json", "--type", "alert");
        _ = watch.StandardOutput.ReadToEndAsync(); // drained: a full pipe would stall it
        try
        {
            long ticks = StartTicks(watch.Id);
            Run.WaitFor(() => RunningSensors.IsRunning(watch.Id, ticks), "the watch to register", 30_000);

            var console = new TestConsole();
            Assert.Equal((int)ExitCode.Failure, GuardCli.Run(["kill", watch.Id.ToString(CultureInfo.InvariantCulture)], console));
            Assert.Contains($"{watch.Id} is a running Guard sensor", console.ErrorText, StringComparison.Ordinal);
            Assert.False(watch.HasExited, "a refused kill sends nothing");

            Assert.True(OwnProcesses.Signal(watch.Id, ticks, 15)); // SIGTERM, as systemd stops it
            Assert.True(watch.WaitForExit(15_000));
            Assert.Equal(0, watch.ExitCode);
            Assert.False(File.Exists(Path.Combine(RunningSensors.Directory, watch.Id.ToString(CultureInfo.InvariantCulture))), "the registration outlived the watch");
            Assert.DoesNotContain(watch.Id, RunningSensors.List().Select(s => s.Pid));
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            EnforcementKernel.Remove(); // what the watch handed over on its way out
        }
    }

    [Fact]
    public void ARegistrationOfAPidThatChangedHandsOrNotWrittenByRootRefusesNothing()
    {
        KernelRequirements.Check();
        using Process reused = Run.Start("/bin/sleep", "30");
        using Process forged = Run.Start("/bin/sleep", "30");
        string dir = RunDirectory.Ensure("sensors");
        string stale = Path.Combine(dir, reused.Id.ToString(CultureInfo.InvariantCulture));
        string foreign = Path.Combine(dir, forged.Id.ToString(CultureInfo.InvariantCulture));
        try
        {
            File.WriteAllText(stale, $"{StartTicks(reused.Id) - 1}\n"); // a sensor that was, under this pid, before
            File.WriteAllText(foreign, $"{StartTicks(forged.Id)}\n");
            Run.Complete("chown", "65534", foreign); // written by someone who is not root

            Assert.Equal(0, GuardCli.Run(["kill", reused.Id.ToString(CultureInfo.InvariantCulture)], new TestConsole()));
            Assert.Equal(0, GuardCli.Run(["kill", forged.Id.ToString(CultureInfo.InvariantCulture)], new TestConsole()));
            Assert.True(Gone(reused));
            Assert.True(Gone(forged));
        }
        finally
        {
            File.Delete(stale);
            File.Delete(foreign);
            if (!reused.HasExited)
                reused.Kill();
            if (!forged.HasExited)
                forged.Kill();
        }
    }

    [Fact]
    public void AGuardProcessThatIsNoSensorIsKilledThoughItRunsTheGuardFile()
    {
        KernelRequirements.Check();
        using var dir = new TempDir();
        // `guard version` taken over before its main() by an injected library: a miner in the guard file itself.
        var info = new ProcessStartInfo(Run.GuardExecutable) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("version");
        info.Environment["LD_PRELOAD"] = dir.Compile("hang", sharedLibrary: true);
        using Process hijacked = Process.Start(info)!;
        try
        {
            Run.WaitFor(() => File.ReadAllText($"/proc/{hijacked.Id}/stat").Contains(") S ", StringComparison.Ordinal), "the hijacked guard to wait", 5000);
            FileId? guardFile = ExecutedFile.KernelIdOf(Run.GuardExecutable);
            Assert.NotNull(guardFile);
            Assert.Equal(guardFile, ExecutedFile.KernelIdOf($"/proc/{hijacked.Id}/exe"));

            // Killed by `guard` itself, running the same file (device and inode): that is no reason to refuse.
            string output = Run.Complete(Run.GuardExecutable, "kill", hijacked.Id.ToString(CultureInfo.InvariantCulture));

            Assert.Contains($"killed {hijacked.Id}", output, StringComparison.Ordinal);
            Assert.True(Gone(hijacked));
            Assert.Equal(137, hijacked.ExitCode);
        }
        finally
        {
            if (!hijacked.HasExited)
                hijacked.Kill();
        }
    }

    [Fact]
    public void JobKillEmptiesTheJobsCgroup()
    {
        KernelRequirements.Check();
        string root = KernelMounts.FindCgroup2Root();
        string parent = Path.Combine(root, "guard-test-" + Guid.NewGuid().ToString("N")[..8]);
        string job = Path.Combine(parent, "job_4242");
        Directory.CreateDirectory(job);
        try
        {
            using Process member = Run.Start("/bin/sh", "-c", "read line; exec sleep 60");
            File.WriteAllText(Path.Combine(job, "cgroup.procs"), member.Id.ToString(CultureInfo.InvariantCulture));
            member.StandardInput.WriteLine("go");
            var console = new TestConsole();
            Assert.Equal(0, GuardCli.Run(["kill", member.Id.ToString(CultureInfo.InvariantCulture), "--job"], console));
            Assert.Contains("slurm:4242", console.Out.ToString(), StringComparison.Ordinal);
            Assert.True(Gone(member));
        }
        finally
        {
            for (int i = 0; i < 50 && Directory.Exists(job); i++)
            {
                try
                {
                    Directory.Delete(job);
                }
                catch (IOException)
                {
                    Thread.Sleep(50); // the killed member is still leaving
                }
            }
            Directory.Delete(parent);
        }
    }

    [Fact]
    public void AProcessWithoutAJobCgroupIsNotJobKilled()
    {
        using Process loner = Run.Start("/bin/sleep", "30");
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Failure, GuardCli.Run(["kill", loner.Id.ToString(CultureInfo.InvariantCulture), "--job"], console));
        Assert.Contains("no job's cgroup", console.ErrorText, StringComparison.Ordinal);
        Assert.False(loner.HasExited);
        loner.Kill();
    }

    private static bool IsZombie(int pid) =>
        File.ReadAllText($"/proc/{pid}/stat") is { } stat && stat[(stat.LastIndexOf(')') + 2)] == 'Z';

    private static int[] Descendants(int root)
    {
        var tree = new HashSet<int> { root };
        bool grew = true;
        while (grew)
        {
            grew = false;
            foreach (int pid in ProcfsReader.Pids())
            {
                if (!tree.Contains(pid) && ProcfsReader.TryReadStat(pid, out ProcfsStat s) && tree.Contains(s.ParentPid))
                    grew = tree.Add(pid);
            }
        }
        tree.Remove(root);
        return [.. tree];
    }
}
