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

    public void Dispose() => EnforcementKernel.Remove();
}
