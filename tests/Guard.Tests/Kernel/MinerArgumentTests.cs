using System.Diagnostics;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>Miner arguments on a renamed binary: judged in user space, killed through a pidfd.</summary>
[Collection(KernelTestGroup.Name)]
public sealed class MinerArgumentTests
{
    [Theory]
    [InlineData("stratum+tcp://127.0.0.1:3333", "argument")]
    [InlineData("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A", "wallet")]
    public void ARenamedMinerWithMinerArgumentsIsKilledBeforeItWorks(string argument, string evidence)
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("data-loader");
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

        // Works for a second before its first "share": the kill must come first.
        using Process p = Run.Start(simulator, "-c", $"sleep 1; echo ran > {marker}", "miner", "-o", argument);
        Assert.True(p.WaitForExit(5000));

        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "miner-arguments" && e.Pid == p.Id);
        Assert.Equal(argument, alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty(evidence).GetString());
        string response = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response")[0].GetString()!;
        Assert.StartsWith("killed", response, StringComparison.Ordinal);
        Assert.Equal(137, p.ExitCode);
        Thread.Sleep(1200);
        Assert.False(File.Exists(marker));
    }

    [Theory]
    [InlineData(5000)]
    [InlineData(40_000)]
    public void AMinerOptionPastTheFirstKilobyteOfArgvIsFoundAndKilled(int at)
    {
        // The exec record keeps 1024 bytes of argv; the kernel reads the rest at exec, before the program runs.
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("data-loader");
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

        string[] args = ["-c", $"sleep 1; echo ran > {marker}", "loader", .. Padding(at), "--donate-level", "1"];
        using Process p = Run.Start(simulator, args);
        Assert.True(p.WaitForExit(5000));

        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "miner-arguments" && e.Pid == p.Id);
        Assert.Equal("--donate-level", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("argument").GetString());
        Assert.Equal(137, p.ExitCode);
        RecordedEvent exec = sensor.WaitFor("its exec", e => e.Action == "exec" && e.Pid == p.Id);
        Assert.Equal("1", exec.Json.GetProperty("process").GetProperty("args").EnumerateArray().Last().GetString());
        Assert.False(exec.Json.TryGetProperty("guard", out System.Text.Json.JsonElement g) && g.TryGetProperty("args_truncated", out _), "argv was read whole");
        Thread.Sleep(1200);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void AnOrdinaryCommandLineOf30KiBIsLeftAlone()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("data-loader");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

        string[] args = ["-c", "sleep 1", "loader", .. Padding(30_000), "--epochs", "3"];
        using Process p = Run.Start(simulator, args);
        Assert.True(p.WaitForExit(5000));
        Assert.Equal(0, p.ExitCode);
        RecordedEvent exec = sensor.WaitFor("its exec", e => e.Action == "exec" && e.Pid == p.Id);
        Assert.Equal("3", exec.Json.GetProperty("process").GetProperty("args").EnumerateArray().Last().GetString());
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert" && e.Pid == p.Id);
    }

    /// <summary>Arguments of 100 bytes (file names, say) that fill argv up to about <paramref name="bytes"/>.</summary>
    private static string[] Padding(int bytes) =>
        [.. Enumerable.Range(0, bytes / 100).Select(i => $"/data/shard-{i:D5}/" + new string('x', 100 - 19))];

    [Fact]
    public void AReinforcementLearningCommandLineIsLeftAlone()
    {
        // --algo= is an option ordinary tools share: weak evidence, which never acts alone.
        using var dir = new TempDir();
        string train = dir.File("train.py", "import time\ntime.sleep(30)\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

        using Process p = Run.Start(Run.Python, train, "--algo=ppo", "--env", "CartPole-v1");
        try
        {
            sensor.WaitFor("its exec", e => e.Action == "exec" && e.Pid == p.Id && e.Args.Contains("--algo=ppo"));
            // A kill for miner arguments lands within milliseconds of the exec.
            Thread.Sleep(1000);
            Assert.False(p.HasExited, "the training run was killed");
            RecordedEvent[] findings = [.. sensor.Events.Where(e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert"
                || e.Json.GetProperty("event").GetProperty("dataset").GetString() == "guard.response")];
            Assert.True(findings.Length == 0, "findings about a training run:\n" + string.Join("\n", findings.Select(f => f.ToString())));
        }
        finally
        {
            p.Kill();
            p.WaitForExit();
        }
    }

    [Fact]
    public void AnExecutableOnTheHashDenyListIsKilledWhateverItsName()
    {
        using var dir = new TempDir();
        string simulator = Path.Combine(dir.Path, "innocent");
        // A shell with random bytes after its end: its own hash, so nothing else on the machine matches.
        File.WriteAllBytes(simulator, [.. File.ReadAllBytes("/bin/sh"), .. Guid.NewGuid().ToByteArray()]);
        File.SetUnixFileMode(simulator, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string hash = Sha256.HexOf(File.ReadAllBytes(simulator));
        Policy policy = Policies.Over($"[indicators]\nminer_hashes = [\"{hash}\"]\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });

        using Process p = Run.Start(simulator, "-c", "sleep 2");
        Assert.True(p.WaitForExit(5000));

        RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "miner-hash" && e.Pid == p.Id);
        Assert.Equal(hash, alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("sha256").GetString());
        Assert.Equal(137, p.ExitCode);
    }

    [Fact]
    public void AllowedExecutablesAreLeftAlone()
    {
        using var dir = new TempDir();
        string simulator = dir.ShellCopy("allowed-tool");
        Policy policy = Policies.Over($"[allow]\nexecutables = [\"{simulator}\"]\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });

        using Process p = Run.Start(simulator, "-c", "true", "--donate-level", "1");
        p.WaitForExit();

        Assert.Equal(0, p.ExitCode);
        sensor.WaitFor("exit", e => e.Action == "exit" && e.Pid == p.Id);
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
    }
}
