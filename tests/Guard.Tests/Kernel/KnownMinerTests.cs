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
    [InlineData("cpuminer-sse2")]
    [InlineData("cpuminer-avx2")]
    [InlineData("cpuminer-avx512-sha-vaes")]
    [InlineData("xmrig-6.21.0")]
    [InlineData("ccminer-x64")]
    [InlineData("XMRIG")] // names match without regard to ASCII case
    [InlineData("PhoenixMINER")]
    [InlineData("xmrig6")]
    public void AReleaseNameOfAMinersFamilyIsKilledAtExec(string name)
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy(name);
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        using Process p = Run.Start(simulator, "-c", $"echo ran > {marker}");
        p.WaitForExit();

        Assert.Equal(137, p.ExitCode);
        Assert.False(File.Exists(marker), $"{name} ran");
        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "known-miner" && e.Pid == p.Id);
        Assert.Contains("killed by the kernel", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response")[0].GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("symlink")]
    [InlineData("fexecve")]
    [InlineData("memfd")]
    public void AFamilyNameIsKnownByTheFileTheKernelOpenedAndByAMemfdsName(string how)
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("cpuminer-zen3");
        string marker = Path.Combine(dir.Path, "marker");
        string worker = Path.Combine(dir.Path, "pytorch-worker");
        File.CreateSymbolicLink(worker, simulator);
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        // The exec's name (comm) is the symlink's, or "N" for a descriptor: never cpuminer-zen3.
        string argv = $"['worker', '-c', 'echo ran > {marker}']";
        string exec = how switch
        {
            "symlink" => $"import os; os.execv('{worker}', {argv})",
            "fexecve" => $"import os; fd = os.open('{simulator}', os.O_RDONLY); os.execve(fd, {argv}, dict(os.environ))",
            _ => $"import os; fd = os.memfd_create('cpuminer-zen3', 0); os.write(fd, open('{simulator}', 'rb').read()); os.execve(fd, {argv}, dict(os.environ))",
        };
        using Process p = Run.PythonScript(exec);
        p.WaitForExit();

        Assert.Equal(137, p.ExitCode);
        Assert.False(File.Exists(marker), $"cpuminer-zen3 run through {how} ran");
        sensor.WaitFor("alert", e => e.Action == "known-miner" && e.Pid == p.Id);
    }

    [Fact]
    public void AMinerRunThroughTheDynamicLoaderIsKilledByTheProgramsName()
    {
        // The kernel sees ld.so exec'd; the program it is asked to run is read from its arguments.
        using var dir = new TempDir();
        string simulator = dir.ExecutableCopy("/bin/sleep", "cpuminer-avx2");
        string loader = File.Exists("/lib64/ld-linux-x86-64.so.2") ? "/lib64/ld-linux-x86-64.so.2"
            : throw new Xunit.Sdk.XunitException("no /lib64/ld-linux-x86-64.so.2: this test needs the x86-64 dynamic loader");
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        using Process p = Run.Start(loader, "--argv0", "kworker", simulator, "30");
        Assert.True(p.WaitForExit(5000), "the loader's miner was not killed");
        Assert.Equal(137, p.ExitCode);
        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "known-miner" && e.Pid == p.Id);
        JsonElement finding = alert.Json.GetProperty("guard").GetProperty("finding");
        Assert.Equal(simulator, finding.GetProperty("evidence").GetProperty("program").GetString());
        Assert.Contains(finding.GetProperty("response").EnumerateArray(), r => r.GetString()!.StartsWith("killed", StringComparison.Ordinal));
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

    /// <summary>
    /// `exec -a xmrig` on an innocent program: argv[0] is a label its caller
    /// picks, not what runs. Known-miner judges the program the kernel ran (its
    /// comm and the file it opened), so the shell runs unharmed and nothing is
    /// reported: a name in argv[0] alone is no evidence of mining.
    /// </summary>
    [Fact]
    public void AnInnocentProgramCalledByAMinersNameInArgvZeroRuns()
    {
        using var dir = new TempDir();
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        using Process p = Run.Start("/bin/bash", "-c", $"exec -a xmrig /bin/sh -c 'echo ran > {marker}'");
        p.WaitForExit();

        Assert.Equal(0, p.ExitCode);
        Assert.True(File.Exists(marker), "/bin/sh called xmrig in argv[0] did not run");
        RecordedEvent exec = sensor.WaitFor("the exec of /bin/sh as xmrig", e => e.Action == "exec" && e.Pid == p.Id && e.Process.GetProperty("args")[0].GetString() == "xmrig");
        Assert.NotEqual("xmrig", exec.Process.GetProperty("name").GetString());
        sensor.WaitFor("its exit", e => e.Action == "exit" && e.Pid == p.Id);
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
    }

    /// <summary>
    /// The reverse, `exec -a python3 ./xmrig`: a miner that names itself after
    /// an interpreter (and a job root) in argv[0] is still the file the kernel
    /// opened, and is killed before its first instruction.
    /// </summary>
    [Fact]
    public void AMinerCallingItselfPython3InArgvZeroIsKilled()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("xmrig");
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = Watch(PolicyLoader.BuiltIn);

        using Process p = Run.Start("/bin/bash", "-c", $"exec -a python3 {simulator} -c 'echo ran > {marker}'");
        p.WaitForExit();

        Assert.Equal(137, p.ExitCode);
        Assert.False(File.Exists(marker), "xmrig called python3 in argv[0] ran");
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
