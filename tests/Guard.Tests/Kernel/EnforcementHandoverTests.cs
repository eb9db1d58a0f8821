using System.Diagnostics;
using Guard.Cli;
using Guard.Sensor;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Enforcement while no sensor runs: a `guard watch` that stops hands the
/// exec-time kill and the Stratum drop over to pinned programs, and the next
/// sensor takes them back. Miner simulators as in the other tests: /bin/sh
/// copies named like miners, Stratum in a private network namespace.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class EnforcementHandoverTests : IDisposable
{
    [Fact]
    public void WithTheSensorStoppedMinersAreStillKilledAndStratumStillDropped()
    {
        KernelRequirements.Check();
        var console = new TestConsole();
        Assert.True(GuardCli.Run(["watch", "--duration", "500ms", "--output", "json", "--type", "exec"], console) == 0, console.ErrorText);
        Assert.True(EnforcementKernel.Active, console.ErrorText);
        Assert.Empty(EmergencyDetach.Holders()); // no sensor runs now

        using var dir = new TempDir();
        // Anywhere: a known miner name.
        string xmrig = dir.ShellCopy("xmrig");
        using (Process p = Run.Start(xmrig, "-c", $"echo ran > {dir.Path}/xmrig.ran"))
        {
            p.WaitForExit();
            Assert.Equal(137, p.ExitCode);
        }
        Assert.False(File.Exists($"{dir.Path}/xmrig.ran"));

        // In a job started after the handover: membership is kept by the pinned programs.
        string rigel = dir.ShellCopy("rigel");
        string script = $"import subprocess\nsubprocess.run(['/bin/bash', '-c', '{rigel} -c \"echo ran > {dir.Path}/rigel.ran\"; true'])\n";
        using (Process python = Run.PythonScript(script))
            python.WaitForExit();
        Assert.False(File.Exists($"{dir.Path}/rigel.ran"), "a miner name inside a job ran with the sensor stopped");

        // Stratum: dropped at egress; with no sensor, nobody kills the owner.
        string received = Path.Combine(dir.Path, "received");
        string line = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "stratum-first-lines.txt")).First(l => l.StartsWith('{'));
        string first = dir.File("first-line", line);
        string ns = $"ip link set lo up; {Run.Python} {dir.File("pool.py", StratumTests.Pool)} {received} & {Run.Python} {dir.File("miner.py", StratumTests.Miner)} {received} whole {first}; wait";
        using (Process p = Run.Start("unshare", "--net", "/bin/sh", "-c", ns))
            Assert.True(p.WaitForExit(15_000));
        Assert.Empty(File.ReadAllBytes(received));

        // The next sensor enforces itself, and takes the pinned programs away.
        using (SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn }))
            Assert.False(EnforcementKernel.Active);
        var clock = Stopwatch.StartNew();
        while (GuardProgramsLoaded.List().Any(p => p.Name.StartsWith(BpfProgramNames.EnforcePrefix, StringComparison.Ordinal)))
        {
            Assert.True(clock.ElapsedMilliseconds < 5000, "the handed-over programs were not freed");
            Thread.Sleep(50);
        }
    }

    [Fact]
    public void AnAuditingSensorHandsNothingOver()
    {
        KernelRequirements.Check();
        using var dir = new TempDir();
        string policy = dir.File("audit.toml", "mode = \"audit\"\n");
        var console = new TestConsole();
        Assert.True(GuardCli.Run(["watch", "--duration", "300ms", "--output", "json", "--type", "exec", "--policy", policy], console) == 0, console.ErrorText);
        Assert.False(EnforcementKernel.Active);
        Assert.DoesNotContain("enforcement programs stay", console.ErrorText, StringComparison.Ordinal);
    }

    [Fact]
    public void ASensorKilledWithSigkillLeavesEnforcementInForce()
    {
        KernelRequirements.Check();
        using var dir = new TempDir();
        using Process watch = StartWatch();
        using var stop = new KillOnDispose(watch);
        int pid = watch.Id;
        watch.Kill(); // SIGKILL: no handover, no cleanup
        watch.WaitForExit();
        Assert.Contains(SensorPins.Owners(), o => o.Pid == pid);
        Assert.Equal(Enforcer.EndedSensor, Enforcement.Read().By);

        AssertEnforced("after SIGKILL");

        // An auditing sensor replaces none of it, so it removes none of it.
        string audit = dir.File("audit.toml", "mode = \"audit\"\n");
        var console = new TestConsole();
        Assert.True(GuardCli.Run(["watch", "--duration", "300ms", "--output", "json", "--type", "exec", "--policy", audit], console) == 0, console.ErrorText);
        Assert.Contains(SensorPins.Owners(), o => o.Pid == pid);
        AssertEnforced("after an auditing sensor came and went");

        // An enforcing sensor takes over: the dead one's pins go once its own are attached.
        using (SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn }))
        {
            Assert.DoesNotContain(SensorPins.Owners(), o => o.Pid == pid);
            Assert.Equal(Enforcer.RunningSensor, Enforcement.Read().By);
        }
        Assert.Empty(SensorPins.Owners()); // a sensor that stops in order takes its own pins with it
        AssertNoGuardProgramLeft();
    }

    [Fact]
    public void AWatchWhoseReaderGoesAwayHandsOver()
    {
        KernelRequirements.Check();
        using Process watch = StartWatch();
        using var stop = new KillOnDispose(watch);
        Run.Complete("/bin/true");
        watch.StandardOutput.ReadLine();
        watch.StandardOutput.Close(); // `guard watch | head -1`: the next write fails with EPIPE
        var clock = Stopwatch.StartNew();
        while (!watch.HasExited && clock.ElapsedMilliseconds < 15_000)
        {
            Run.Complete("/bin/true"); // something to write about
            Thread.Sleep(50);
        }
        Assert.True(watch.HasExited, "guard watch did not exit once its stdout was gone");
        Assert.True(EnforcementKernel.Active, "the watch that lost its reader handed nothing over: " + watch.StandardError.ReadToEnd());
        Assert.Empty(SensorPins.Owners());
        AssertEnforced("after the watch's stdout closed");
    }

    [Fact]
    public void ASecondEnforcingWatchIsRefusedAndAnAuditingOneOnlyObserves()
    {
        KernelRequirements.Check();
        using var dir = new TempDir();
        using Process first = StartWatch();
        using var stop = new KillOnDispose(first);

        var console = new TestConsole();
        Assert.Equal(1, GuardCli.Run(["watch", "--duration", "300ms", "--output", "json", "--type", "exec"], console));
        Assert.Contains($"another guard watch (pid {first.Id}) enforces on this host", console.ErrorText, StringComparison.Ordinal);

        string audit = dir.File("audit.toml", "mode = \"audit\"\n");
        console = new TestConsole();
        Assert.True(GuardCli.Run(["watch", "--duration", "300ms", "--output", "json", "--type", "exec", "--policy", audit], console) == 0, console.ErrorText);
        Assert.Contains(SensorPins.Owners(), o => o.Pid == first.Id); // the first one's enforcement untouched
        Assert.Equal(Enforcer.RunningSensor, Enforcement.Read().By);
    }

    /// <summary>`guard watch` as its own process (this run's pin root and action log), once its enforcing programs are pinned.</summary>
    private static Process StartWatch()
    {
        Process watch = Run.Start(Path.Combine(AppContext.BaseDirectory, "guard"), "watch", "--output", "json", "--type", "exec");
        var clock = Stopwatch.StartNew();
        while (!SensorPins.Owners().Any(o => o.Pid == watch.Id))
        {
            if (watch.HasExited || clock.ElapsedMilliseconds > 20_000)
            {
                watch.Kill();
                throw new Xunit.Sdk.XunitException("guard watch did not pin its enforcement: " + watch.StandardError.ReadToEnd());
            }
            Thread.Sleep(50);
        }
        return watch;
    }

    /// <summary>A known miner dies before its first act, anywhere and inside a job started now.</summary>
    private static void AssertEnforced(string when)
    {
        using var dir = new TempDir();
        string xmrig = dir.ShellCopy("xmrig");
        string ran = Path.Combine(dir.Path, "xmrig.ran");
        using (Process p = Run.Start(xmrig, "-c", $"echo ran > {ran}"))
        {
            p.WaitForExit();
            Assert.True(p.ExitCode == 137, $"a known miner exited {p.ExitCode} {when}");
        }
        Assert.False(File.Exists(ran), $"a known miner ran {when}");
        string rigel = dir.ShellCopy("rigel");
        string rigelRan = Path.Combine(dir.Path, "rigel.ran");
        string script = $"import subprocess\nsubprocess.run(['/bin/bash', '-c', '{rigel} -c \"echo ran > {rigelRan}\"; true'])\n";
        using (Process python = Run.PythonScript(script))
            python.WaitForExit();
        Assert.False(File.Exists(rigelRan), $"a miner name inside a job ran {when}");
    }

    private static void AssertNoGuardProgramLeft()
    {
        var clock = Stopwatch.StartNew();
        // The lineage recorder stays pinned until detach --all by design; nothing else may.
        while (GuardProgramsLoaded.List().Any(p => p.HolderPids.Count == 0 && !p.Name.StartsWith(BpfProgramNames.LineagePrefix, StringComparison.Ordinal)))
        {
            Assert.True(clock.ElapsedMilliseconds < 5000, "pinned programs were not freed: " + string.Join(", ", GuardProgramsLoaded.List().Select(p => p.Name)));
            Thread.Sleep(50);
        }
    }

    /// <summary>Kills the test's own sensor process (by its handle) however the test ends.</summary>
    private sealed class KillOnDispose(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited)
                process.Kill();
            process.WaitForExit();
        }
    }

    public void Dispose()
    {
        EnforcementKernel.Remove();
        SensorPins.RemoveDead(static (_, _) => false);
    }
}
