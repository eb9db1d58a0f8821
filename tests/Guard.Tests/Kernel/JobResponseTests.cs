using System.Diagnostics;
using Guard.Sensor;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// What the rules do to the job that launched a miner: the default policy's
/// quarantine-job holds it for a person, kill-job ends it. The job is a
/// long-running python3 (a job root) whose tool shell starts a simulator
/// named like a miner: a copy of /bin/sh the kernel kills at exec.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class JobResponseTests
{
    private static Process StartJob(TempDir dir)
    {
        string simulator = dir.ShellCopy("rigel");
        // Trains (sleeps) after its tool shell ran the "miner"; told to go once Guard watches.
        string script = $"import subprocess, sys, time\nsys.stdin.readline()\nsubprocess.run(['/bin/bash', '-c', '{simulator} -c true; true'])\nprint('trained', flush=True)\ntime.sleep(60)\n";
        return Run.PythonScript(script);
    }

    private static char State(int pid)
    {
        string status = File.ReadAllText($"/proc/{pid}/status");
        return status[status.IndexOf("State:\t", StringComparison.Ordinal) + 7];
    }

    [Fact]
    public void QuarantineJobKillsTheMinerAndHoldsItsJobForAPerson()
    {
        using var dir = new TempDir();
        using Process job = StartJob(dir);
        try
        {
            using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
            job.StandardInput.WriteLine("go");

            RecordedEvent alert = sensor.WaitFor("alert", e => e.Action == "miner-in-job");
            RecordedEvent held = sensor.WaitFor("quarantine action", e => e.Action == "quarantine");
            string[] response = [.. alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response").EnumerateArray().Select(r => r.GetString()!)];
            Assert.Contains(response, r => r.StartsWith("killed by the kernel", StringComparison.Ordinal));
            Assert.Contains(response, r => r.Contains($"quarantined the tree of {job.Id}", StringComparison.Ordinal));
            Assert.Equal("success", held.Json.GetProperty("event").GetProperty("outcome").GetString());
            Assert.Equal("miner-in-job", held.Json.GetProperty("guard").GetProperty("action").GetProperty("ordered_by").GetProperty("via").GetString());
            Assert.Equal(job.Id, held.Pid);
            Assert.Equal('T', State(job.Id));

            QuarantineHold hold = new Quarantines(KernelMounts.FindCgroup2Root()).List().Single();
            Assert.Equal(job.Id, hold.RootPid);
            Assert.Contains("miner-in-job", hold.Reason, StringComparison.Ordinal);
        }
        finally
        {
            // The harness released the hold; the job goes with the test.
            job.Kill(entireProcessTree: true);
        }
        Assert.False(QuarantineKernel.Pinned, "the released hold left pins");
    }

    /// <summary>
    /// Rules decided in user space hold the job too: the finding carries the
    /// job root the miner's exec named. The job is a python3 (a job root) in a
    /// private network namespace that starts its "miner" and then trains
    /// (sleeps); the test releases the hold itself.
    /// </summary>
    [Theory]
    [InlineData("miner-arguments")]
    [InlineData("stratum")]
    public void EveryRuleHoldsTheJobThatLaunchedTheMiner(string rule)
    {
        using var dir = new TempDir();
        string received = Path.Combine(dir.Path, "received");
        string loader = Path.Combine(dir.Path, "data-loader");
        File.Copy("/bin/sleep", loader);
        File.SetUnixFileMode(loader, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string first = dir.File("first-line", File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "stratum-first-lines.txt")).First(l => l.StartsWith('{')));
        string[] miner = rule == "stratum"
            ? [Run.Python, dir.File("client.py", StratumTests.Miner), received, "whole", first]
            : [loader, "30", "--donate-level", "1", "-o", "stratum+tcp://127.0.0.1:3333"];
        string job = $$"""
            import subprocess, sys, time
            pool = subprocess.Popen([sys.executable, {{Quoted(dir.File("pool.py", StratumTests.Pool))}}, {{Quoted(received)}}])
            subprocess.run([{{string.Join(", ", miner.Select(Quoted))}}])
            time.sleep(60)
            """;
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        // From a file: on a command line, the miner's arguments would be found in the job's own.
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", $"ip link set lo up; exec {Run.Python} {dir.File("job.py", job)}");
        try
        {
            RecordedEvent alert = sensor.WaitFor($"{rule} alert", e => e.Action == rule, 10_000);
            RecordedEvent held = sensor.WaitFor("quarantine action", e => e.Action == "quarantine");
            Assert.Equal(ns.Id, alert.Json.GetProperty("guard").GetProperty("job_root").GetProperty("pid").GetInt32());
            string[] response = [.. alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response").EnumerateArray().Select(r => r.GetString()!)];
            Assert.Contains(response, r => r.Contains($"quarantined the tree of {ns.Id}", StringComparison.Ordinal));
            Assert.Equal("success", held.Json.GetProperty("event").GetProperty("outcome").GetString());
            Assert.Equal(rule, held.Json.GetProperty("guard").GetProperty("action").GetProperty("ordered_by").GetProperty("via").GetString());
            Assert.Equal(ns.Id, held.Pid);
            Assert.Equal('T', State(ns.Id));

            var quarantines = new Quarantines(KernelMounts.FindCgroup2Root());
            QuarantineHold hold = Assert.Single(quarantines.List());
            Assert.Equal(ns.Id, hold.RootPid);
            Assert.StartsWith(rule, hold.Reason, StringComparison.Ordinal);
            Assert.True(quarantines.Release(hold).Done, "the hold could not be released");
            Assert.NotEqual('T', State(ns.Id));
        }
        finally
        {
            ns.Kill(entireProcessTree: true);
        }
        Assert.False(QuarantineKernel.Pinned, "the released hold left pins");
    }

    private static string Quoted(string s) => "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";

    [Fact]
    public void KillJobEndsTheJobThatLaunchedTheMiner()
    {
        using var dir = new TempDir();
        Policy policy = Policies.Over("[rules]\nminer-in-job = \"kill-job\"\n");
        using Process job = StartJob(dir);
        try
        {
            using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });
            job.StandardInput.WriteLine("go");

            sensor.WaitFor("alert", e => e.Action == "miner-in-job");
            RecordedEvent killed = sensor.WaitFor("job kill", e => e.Action == "kill-tree");
            Assert.Equal("miner-in-job", killed.Json.GetProperty("guard").GetProperty("action").GetProperty("ordered_by").GetProperty("via").GetString());
            Assert.True(job.WaitForExit(5000));
            Assert.Equal(137, job.ExitCode);
            Assert.False(QuarantineKernel.Pinned);
        }
        finally
        {
            if (!job.HasExited)
                job.Kill(entireProcessTree: true);
        }
    }
}
