using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Known miner names, judged by the kernel at exec. The simulator is a copy
/// of /bin/sh under a miner's name whose first act writes a marker file: if
/// the marker exists, the process ran.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class KnownMinerTests
{
    private static SensorHarness Watch(Policy policy) => SensorHarness.Start(new SensorOptions { Policy = policy });

    private static RecordedEvent ExitOf(SensorHarness sensor, string simulator) =>
        sensor.WaitFor($"exit of {simulator}", e => e.Action == "exit" && e.Process.TryGetProperty("executable", out JsonElement x) && x.GetString() == simulator);

    /// <summary>The simulator runs to its end: its marker written, exit 0, no alert.</summary>
    private static void RunsUnharmed(SensorHarness sensor, string simulator, string marker)
    {
        using Process p = Run.Start(simulator, "-c", $"echo ran > {marker}");
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        Assert.True(File.Exists(marker));
        ExitOf(sensor, simulator);
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
    }

    /// <summary>python3 (a job root) runs bash, which runs the simulator: a training job's tool shell.</summary>
    private static void RunInsideAJob(string simulator, string marker)
    {
        string script = $"import subprocess\nsubprocess.run(['/bin/bash', '-c', '{simulator} -c \"echo ran > {marker}\"; true'])\n";
        using Process python = Run.PythonScript(script);
        python.WaitForExit();
    }

    [Fact]
    public void AMinerNameInsideATrainingJobIsKilledBeforeItsFirstInstruction()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("rigel"); // a real program elsewhere: acted on in jobs only
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        RunInsideAJob(simulator, marker);

        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "miner-in-job");
        Assert.False(File.Exists(marker), "the simulator ran: it wrote its marker");
        Assert.Equal("alert", alert.Json.GetProperty("event").GetProperty("kind").GetString());
        Assert.Equal("T1496", alert.Json.GetProperty("threat").GetProperty("technique").GetProperty("id")[0].GetString());
        JsonElement finding = alert.Json.GetProperty("guard").GetProperty("finding");
        Assert.Equal(simulator, finding.GetProperty("evidence").GetProperty("executable").GetString());
        Assert.Equal(Sha256.HexOf(File.ReadAllBytes("/bin/sh")), finding.GetProperty("evidence").GetProperty("sha256").GetString());
        Assert.Contains("killed by the kernel", finding.GetProperty("response")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal("python3", alert.Json.GetProperty("guard").GetProperty("job_root").GetProperty("name").GetString());
        Assert.Equal("bash", alert.Process.GetProperty("parent").GetProperty("name").GetString());
        Assert.Equal(9, ExitOf(sensor, simulator).Json.GetProperty("guard").GetProperty("exit").GetProperty("signal").GetInt32());
    }

    [Fact]
    public void TheSameNameOutsideAJobRuns()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("rigel");
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        RunsUnharmed(sensor, simulator, marker);
    }

    [Fact]
    public void AnUnambiguousMinerNameIsKilledAnywhere()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("xmrig");
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        using Process p = Run.Start(simulator, "-c", $"echo ran > {marker}");
        p.WaitForExit();

        Assert.Equal(137, p.ExitCode);
        Assert.False(File.Exists(marker));
        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "known-miner");
        Assert.Equal(p.Id, alert.Pid);
        Assert.False(alert.Json.GetProperty("guard").TryGetProperty("job_root", out _));
    }

    [Theory]
    [InlineData("symlink")]
    [InlineData("/proc/self/fd")]
    [InlineData("/dev/fd")]
    public void AMinerRunByAnotherNameIsKnownByTheFileTheKernelOpened(string how)
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("xmrig");
        string marker = Path.Combine(dir.Path, "marker");
        string worker = Path.Combine(dir.Path, "pytorch-worker");
        File.CreateSymbolicLink(worker, simulator);
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        // The exec's name (comm) is the symlink's, or "N" for a descriptor path: not xmrig.
        string exec = how == "symlink"
            ? $"import os; os.execv('{worker}', ['worker', '-c', 'echo ran > {marker}'])"
            : $"import os; fd = os.open('{simulator}', os.O_RDONLY); os.set_inheritable(fd, True); os.execv('{how}/%d' % fd, ['worker', '-c', 'echo ran > {marker}'])";
        using Process p = Run.PythonScript(exec);
        p.WaitForExit();

        Assert.Equal(137, p.ExitCode);
        Assert.False(File.Exists(marker), $"xmrig run through {how} ran");
        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "known-miner" && e.Pid == p.Id);
        Assert.Contains("killed by the kernel", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AnAllowedExecutableIsNotKilledWhateverItsName()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("xmrig");
        string marker = Path.Combine(dir.Path, "marker");
        Policy allow = Policies.Over($"[allow]\nexecutables = [\"{simulator}\"]\n");
        using SensorHarness sensor = Watch(allow);

        RunsUnharmed(sensor, simulator, marker);
    }

    [Fact]
    public void InAuditModeTheMinerRunsAndIsReported()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("xmrig");
        string marker = Path.Combine(dir.Path, "marker");
        Policy audit = Policies.Over("mode = \"audit\"\n");
        using SensorHarness sensor = Watch(audit);

        using Process p = Run.Start(simulator, "-c", $"echo ran > {marker}");
        p.WaitForExit();

        Assert.Equal(0, p.ExitCode);
        Assert.True(File.Exists(marker));
        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "known-miner");
        Assert.Equal(0, alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response").GetArrayLength());
    }

    [Fact]
    public void AProcessInAJobBeforeTheSensorStartedStillCounts()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("rigel");
        string marker = Path.Combine(dir.Path, "marker");
        // The job root starts first and waits; its tool shell runs the miner once Guard watches.
        string script = $"import subprocess, sys\nsys.stdin.readline()\nsubprocess.run(['/bin/bash', '-c', '{simulator} -c \"echo ran > {marker}\"; true'])\n";
        using Process python = Run.PythonScript(script);
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);
        python.StandardInput.WriteLine("go");
        python.WaitForExit();

        sensor.WaitFor("alert", e => e.Action == "miner-in-job");
        Assert.False(File.Exists(marker));
    }
}
