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
