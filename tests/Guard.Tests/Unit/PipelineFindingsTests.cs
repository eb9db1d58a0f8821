using System.Text;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Gpu;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Each record reaches the detectors that judge it, through the pipeline and
/// the judge, and what the policy allows is never judged: synthetic records,
/// no kernel, findings reported and never acted on. The processes run under
/// a training job's launcher (python3 train.py) unless a test says otherwise.
/// </summary>
public sealed class PipelineFindingsTests
{
    private const int Launcher = 710_000;
    private const int First = Launcher + 1;
    private const int Second = Launcher + 2;
    private const int Third = Launcher + 3;

    /// <summary>
    /// An allowed tool, and an allowed network (TEST-NET-3). A file that exists: an allowed
    /// path allows only the file it names, and an exec record names the file that ran.
    /// </summary>
    private const string AllowedTool = "/usr/bin/env";
    private static readonly Policy AllowList = Policies.Over($"[allow]\nexecutables = [\"{AllowedTool}\"]\ndestinations = [\"203.0.113.0/24\"]\n");

    /// <summary>A public address (TEST-NET-2) nothing allows.</summary>
    private const string Pool = "198.51.100.7";
    private const string AllowedPool = "203.0.113.9";

    private static readonly byte[] StratumLogin = Encoding.ASCII.GetBytes("{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\"");

    private readonly RecordingSink sink = new();
    private readonly ProcessTable table = new(new EntityIds("feedfacecafe"), null, new UserNames());
    private PolicyDetectors detectors = null!;

    /// <summary>The pipeline judging by <paramref name="policy"/> (the built-in one when null), with the job's launcher running.</summary>
    private EventPipeline Start(Policy? policy = null)
    {
        detectors = PolicyDetectors.From(policy ?? PolicyLoader.BuiltIn);
        EventPipeline pipeline = Pipelines.Over(table, sink, detectors);
        pipeline.OnFork(Records.Fork(Launcher, 0));
        pipeline.OnExec(Records.Exec(Launcher, 0, "/usr/bin/python3 train.py", jobRoot: Launcher));
        return pipeline;
    }

    /// <summary><paramref name="pid"/> forked by the launcher runs <paramref name="commandLine"/> inside its job.</summary>
    private static int InJob(EventPipeline pipeline, int pid, string commandLine, uint flags = 0)
    {
        pipeline.OnFork(Records.Fork(pid, Launcher));
        pipeline.OnExec(Records.Exec(pid, Launcher, commandLine, jobRoot: Launcher, flags: flags));
        return pid;
    }

    private RecordedEvent[] Alerts => [.. sink.Snapshot().Where(e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert")];

    private static JsonElement Finding(RecordedEvent alert) => alert.Json.GetProperty("guard").GetProperty("finding");

    private static string Evidence(RecordedEvent alert, string key) => Finding(alert).GetProperty("evidence").GetProperty(key).GetString()!;

    [Fact]
    public void APoolQueryAfterAPoolPortConnectInAJobIsOneWeakAlertWithBothSignals()
    {
        EventPipeline pipeline = Start();
        int worker = InJob(pipeline, First, "/usr/bin/python3 worker.py");
        pipeline.OnConnect(Records.Connect(worker, 1, Pool, 3333));
        Assert.Empty(Alerts); // one weak signal is no alert
        pipeline.OnDns(Records.Dns(worker, "gulf.moneroocean.stream"));

        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("pool-dns", alert.Action);
        Assert.Equal(worker, alert.Pid);
        Assert.Equal($"{Pool}:3333", Evidence(alert, "pool-port_0"));
        Assert.StartsWith("gulf.moneroocean.stream", Evidence(alert, "pool-dns_1"), StringComparison.Ordinal);
    }

    [Fact]
    public void AConnectByAnAllowedProcessOrToAnAllowedDestinationIsNoEvidence()
    {
        EventPipeline pipeline = Start(AllowList);
        int allowed = InJob(pipeline, First, AllowedTool + " --threads 4");
        pipeline.OnConnect(Records.Connect(allowed, 1, Pool, 3333));
        pipeline.OnDns(Records.Dns(allowed, "gulf.moneroocean.stream"));
        int toAllowed = InJob(pipeline, Second, "/usr/bin/python3 worker.py");
        pipeline.OnConnect(Records.Connect(toAllowed, 2, AllowedPool, 3333));
        pipeline.OnDns(Records.Dns(toAllowed, "gulf.moneroocean.stream"));
        Assert.Empty(Alerts); // a pool query alone is one signal

        // The same with neither allowed: two signals, an alert.
        int other = InJob(pipeline, Third, "/usr/bin/python3 worker.py");
        pipeline.OnConnect(Records.Connect(other, 3, Pool, 3333));
        pipeline.OnDns(Records.Dns(other, "gulf.moneroocean.stream"));
        Assert.Equal(other, Assert.Single(Alerts).Pid);
    }

    [Fact]
    public void AStratumMatchIsAnAlertAboutTheConnectionsOwner()
    {
        EventPipeline pipeline = Start();
        int worker = InJob(pipeline, First, "/usr/bin/python3 worker.py");
        pipeline.OnPayload(Records.Payload(worker, 7, StratumLogin, 40, PayloadRecord.Stratum | PayloadRecord.Dropped, address: Pool, port: 443));
        pipeline.OnStream(Records.Stream(worker, 7, "login", 41, address: Pool, port: 443));

        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("stratum", alert.Action);
        Assert.Equal(worker, alert.Pid);
        Assert.Equal($"{Pool}:443", Evidence(alert, "destination"));
        Assert.Contains("dropped at egress", Finding(alert).GetProperty("response")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AStratumMatchByAnAllowedProcessOrToAnAllowedDestinationIsNoAlert()
    {
        EventPipeline pipeline = Start(AllowList);
        int allowed = InJob(pipeline, First, AllowedTool + " --threads 4");
        pipeline.OnStream(Records.Stream(allowed, 7, "login", 40, address: Pool));
        int toAllowed = InJob(pipeline, Second, "/usr/bin/python3 worker.py");
        pipeline.OnStream(Records.Stream(toAllowed, 8, "login", 40, (byte)GuardMethod.Alert, address: AllowedPool));
        Assert.Empty(Alerts);

        int other = InJob(pipeline, Third, "/usr/bin/python3 worker.py");
        pipeline.OnStream(Records.Stream(other, 9, "login", 40, address: Pool));
        Assert.Equal(other, Assert.Single(Alerts).Pid);
    }

    [Fact]
    public void ATlsHelloNamingAPoolAmongAConnectionsFirstBytesIsAPoolSniAlert()
    {
        EventPipeline pipeline = Start();
        int worker = InJob(pipeline, First, "/usr/bin/python3 worker.py");
        pipeline.OnPayload(Records.Payload(worker, 7, Records.TlsClientHello("gulf.moneroocean.stream"), 40, PayloadRecord.Final, address: Pool, port: 443));

        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("pool-sni", alert.Action);
        Assert.Equal(worker, alert.Pid);
        Assert.Equal("gulf.moneroocean.stream", Evidence(alert, "server_name"));
    }

    [Fact]
    public void ATlsHelloNamingAPoolFromAnAllowedProcessOrToAnAllowedDestinationIsNoAlert()
    {
        EventPipeline pipeline = Start(AllowList);
        byte[] hello = Records.TlsClientHello("gulf.moneroocean.stream");
        int allowed = InJob(pipeline, First, AllowedTool + " --threads 4");
        pipeline.OnPayload(Records.Payload(allowed, 7, hello, 40, PayloadRecord.Final, address: Pool, port: 443));
        int toAllowed = InJob(pipeline, Second, "/usr/bin/python3 worker.py");
        pipeline.OnPayload(Records.Payload(toAllowed, 8, hello, 40, PayloadRecord.Final, address: AllowedPool, port: 443));
        Assert.Empty(Alerts);
    }

    [Fact]
    public void MinerArgumentsAreAnAlertUnlessTheExecutableIsAllowed()
    {
        EventPipeline pipeline = Start(AllowList);
        InJob(pipeline, First, AllowedTool + " --donate-level 1");
        Assert.Empty(Alerts);

        int miner = InJob(pipeline, Second, "/home/alice/project/xmr --donate-level 1");
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("miner-arguments", alert.Action);
        Assert.Equal(miner, alert.Pid);
    }

    [Fact]
    public void AStagedExecInAJobAfterAPoolQueryIsAStagingAlert()
    {
        EventPipeline pipeline = Start();
        pipeline.OnFork(Records.Fork(First, Launcher)); // the launcher's image, in its job
        pipeline.OnDns(Records.Dns(First, "pool.supportxmr.com"));
        Assert.Empty(Alerts);
        pipeline.OnExec(Records.Exec(First, Launcher, "/dev/shm/.cache/kworker", jobRoot: Launcher, flags: ExecRecord.SharedDirectory));

        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("staging", alert.Action);
        Assert.Equal(First, alert.Pid);
        Assert.Equal("shared-directory: /dev/shm/.cache/kworker", Evidence(alert, "staging_1"));
    }

    [Fact]
    public void RepeatsOfAnAlertGoOutWithTheirCountWhenTheProcessExits()
    {
        EventPipeline pipeline = Start();
        int worker = InJob(pipeline, First, "/usr/bin/python3 worker.py");
        for (ulong cookie = 7; cookie <= 9; cookie++)
            pipeline.OnStream(Records.Stream(worker, cookie, "login", 40 + cookie, address: Pool));
        Assert.Single(Alerts); // repeats within the minute are counted, not reported
        pipeline.OnExit(Records.Exit(worker, 100));

        RecordedEvent[] alerts = Alerts;
        Assert.Equal(2, alerts.Length);
        Assert.All(alerts, a => Assert.Equal(("stratum", worker), (a.Action, a.Pid)));
        Assert.Equal([1, 3], alerts.Select(a => Finding(a).GetProperty("count").GetInt32()));
    }

    private static GpuDeviceSample Device(params int[] pids) =>
        new(0, "NVIDIA H100 80GB HBM3", "GPU-0", 97, 40, 30UL << 30, 80UL << 30, 350_000, false,
            [.. pids.Select(pid => new GpuProcessSample(pid, 2UL << 30, 88, 30))]);

    [Fact]
    public void AGpuIntruderIsForgottenWhenItExits()
    {
        EventPipeline pipeline = Start();
        int intruder = InJob(pipeline, First, "/home/alice/project/render --device 0");
        pipeline.OnGpuSamples([Device(intruder)], 1_000);
        Assert.Equal(intruder, Assert.Single(Alerts, a => a.Action == "gpu-intruder").Pid);
        ProcessEntry entry = table.Find(intruder)!;
        Assert.True(detectors.GpuIntruders.Remembers(entry));

        pipeline.OnExit(Records.Exit(intruder, 2_000));
        Assert.False(detectors.GpuIntruders.Remembers(entry));
    }

    [Fact]
    public void AnAllowedExecutableOnAGpuIsNoIntruder()
    {
        EventPipeline pipeline = Start(AllowList);
        int allowed = InJob(pipeline, First, AllowedTool + " --device 0");
        int intruder = InJob(pipeline, Second, "/home/alice/project/render --device 0");
        pipeline.OnGpuSamples([Device(allowed, intruder)], 1_000);
        Assert.Equal(intruder, Assert.Single(Alerts).Pid);
    }

    [Fact]
    public void TheRoundingFingerprintOfAnAllowedExecutableIsNoAlert()
    {
        EventPipeline pipeline = Start(AllowList);
        int allowed = InJob(pipeline, First, AllowedTool + " --threads 4");
        int miner = InJob(pipeline, Second, "/home/alice/project/render --threads 4");
        Judge judge = Pipelines.JudgeOver(table, sink, detectors);
        for (ulong s = 0; s <= 30; s++)
        {
            // Every directed mode, 10 switches each a second: RandomX's fingerprint.
            judge.OnRoundingSample([(allowed, Rounding(allowed, 10 * s)), (miner, Rounding(miner, 10 * s))], 100_000_000_000L + (long)s * 1_000_000_000L, table);
        }
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal(("randomx", miner), (alert.Action, alert.Pid));
    }

    /// <summary>The kernel's counts for <paramref name="pid"/>: <paramref name="eachMode"/> switches in each directed mode.</summary>
    private static GuardRounding Rounding(int pid, ulong eachMode)
    {
        var r = new GuardRounding { StartTimeNs = Records.StartOf(pid) };
        r.Switches[0] = r.Switches[1] = r.Switches[2] = eachMode;
        return r;
    }
}
