using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Gpu;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>Who may do GPU work inside a job, and what the kernel's class counts say a process did.</summary>
public sealed class GpuCorrelationTests
{
    private static readonly GpuIntruderFindings Findings = new(PolicyLoader.BuiltIn);
    private static int nextPid = 5000;

    private static ProcessEntry Process(string command, ProcessEntry? parent, int jobRoot = -1, string? staging = null)
    {
        int pid = nextPid++;
        string[] argv = command.Split(' ');
        return new ProcessEntry(pid, 1, $"test-1-{pid}", ProcessOrigin.Exec)
        {
            Name = Encoding.UTF8.GetBytes(Path.GetFileName(argv[0])),
            Executable = Encoding.UTF8.GetBytes(argv[0]),
            Args = Encoding.UTF8.GetBytes(string.Join('\0', argv)),
            Parent = parent,
            JobRootPid = jobRoot == -1 ? parent?.JobRootPid ?? 0 : jobRoot,
            WorkingDirectory = "/home/alice/project",
            Staging = staging,
        };
    }

    private static ProcessEntry Root(string command)
    {
        ProcessEntry root = Process(command, null, 0);
        root.JobRootPid = root.Pid;
        return root;
    }

    [Fact]
    public void EveryRankAndDataLoaderWorkerOfAMultiRankJobIsAWorker()
    {
        ProcessEntry torchrun = Root("/usr/bin/torchrun --nproc_per_node=8 train.py");
        for (int rank = 0; rank < 8; rank++)
        {
            ProcessEntry worker = Process("/usr/bin/python3 -u train.py --local-rank " + rank, torchrun);
            Assert.Null(Findings.Verdict(worker));
            ProcessEntry loader = Process("/usr/bin/python3 -c from multiprocessing.spawn import spawn_main; spawn_main()", worker);
            Assert.Null(Findings.Verdict(loader));
        }
        Assert.Null(Findings.Verdict(torchrun));
        ProcessEntry mpirun = Root("/usr/bin/mpirun -np 4 python train.py");
        Assert.Null(Findings.Verdict(Process("/usr/bin/python train.py", mpirun)));
    }

    [Fact]
    public void ABinaryThroughTheJobsShellAStagedFileAndAScriptFromTmpAreIntruders()
    {
        ProcessEntry trainer = Root("/usr/bin/python3 train.py");
        ProcessEntry shell = Process("/bin/bash -c ./t-rex -a kawpow", trainer);
        Assert.Contains("neither a launcher", Findings.Verdict(Process("/home/alice/project/t-rex -a kawpow", shell)));
        Assert.Contains("through a shell", Findings.Verdict(Process("/usr/bin/python3 /opt/x/cuda_work.py", shell)));
        Assert.Contains("through a shell", Findings.Verdict(Process("/usr/bin/python3 -c import work", shell)));
        // An evaluation script of the job's own tree run with shell=True is the job's.
        Assert.Null(Findings.Verdict(Process("/usr/bin/python3 eval.py --checkpoint ckpt/step_1000.pt", shell)));
        Assert.Contains("/tmp/m.py", Findings.Verdict(Process("/usr/bin/python3 /tmp/m.py", trainer)));
        Assert.Contains("staged", Findings.Verdict(Process("/usr/bin/python3 x.py", trainer, staging: "memfd")));
        ProcessEntry inPlace = Process("/usr/bin/python3 -c import cuda_work", trainer);
        inPlace.ExecutedFrom = "bash"u8.ToArray(); // bash -c 'python3 cuda_work.py' execs without forking
        Assert.Contains("ran it in place", Findings.Verdict(inPlace));
    }

    [Fact]
    public void OutsideEveryJobOnlyGpuServicesMayUseTheGpu()
    {
        Assert.Null(Findings.Verdict(Process("/usr/bin/nvidia-smi -q", null, 0)));
        Assert.Contains("outside every training job", Findings.Verdict(Process("/opt/miner/gminer --algo kawpow", null, 0)));
    }

    [Fact]
    public void TheClassesAProcessAllocatedSayWhatItDid()
    {
        var smi = new GpuActivity { Opened = true };
        smi.Classes[0x0041] = 1;
        smi.Classes[0x0080] = 1;
        smi.Classes[0x2080] = 1;
        Assert.Equal(GpuWork.Opened, smi.Work);

        var cuda = new GpuActivity();
        cuda.Counts[(int)IoctlKind.RmAlloc] = 40;
        cuda.Counts[(int)IoctlKind.Uvm] = 3;
        foreach (uint id in new uint[] { 0x0041, 0x0080, 0x2080, 0x0040, 0x90F1, 0xA06C, 0xC86F, 0xCBC0, 0xC8B5 })
            cuda.Classes[id] = 1;
        Assert.Equal(GpuWork.Opened | GpuWork.Memory | GpuWork.Channel | GpuWork.Compute | GpuWork.UnifiedMemory, cuda.Work);
        Assert.Equal("HOPPER_COMPUTE_A", GpuClasses.Find(0xCBC0)!.Name);
        Assert.Equal(GpuObjectKind.Channel, GpuClasses.Find(0xC96F)!.Kind);
        Assert.Null(GpuClasses.Find(0x1234));
    }

    [Fact]
    public void AWorkerBusyOnTheGpuWithPoolEvidenceIsFoundOnceTheBusyIsSustained()
    {
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        var findings = new GpuIntruderFindings(PolicyLoader.BuiltIn); // busy: 50% for 30 s
        ProcessEntry rank = Process("/usr/bin/python3 train.py", Root("/usr/bin/torchrun train.py"));
        ProcessEntry quiet = Process("/usr/bin/python3 train.py", Root("/usr/bin/torchrun train.py"));
        rank.WeakEvidence = [new("pool-dns", "gulf.moneroocean.stream")];
        var device = new GpuDeviceSample(0, "NVIDIA H100", "GPU-0", 95, 40, 1, 2, null, false, []);
        var busy = new GpuProcessSample(rank.Pid, 1UL << 30, 90, 30);
        for (int s = 0; s < 30; s += 10)
        {
            Assert.Null(findings.OnNvmlProcess(rank, device, busy, table, s * 1_000_000_000L));
            Assert.Null(findings.OnNvmlProcess(quiet, device, busy with { Pid = quiet.Pid }, table, s * 1_000_000_000L));
        }
        var alert = findings.OnNvmlProcess(rank, device, busy, table, 30_000_000_000L);
        Assert.NotNull(alert);
        Assert.Contains(alert.Evidence, e => e.Key == "pool-dns");
        Assert.Null(findings.OnNvmlProcess(rank, device, busy, table, 40_000_000_000L));
        Assert.Null(findings.OnNvmlProcess(quiet, device, busy with { Pid = quiet.Pid }, table, 40_000_000_000L)); // busy, but no pool evidence
    }

    [Fact]
    public void AGpuBusyWithNoProcessToAccountForItIsFoundOnce()
    {
        var findings = new GpuIntruderFindings(PolicyLoader.BuiltIn);
        var hidden = new GpuDeviceSample(1, "NVIDIA H100", "GPU-1", 99, 60, 1, 2, null, false, []);
        var mig = hidden with { Uuid = "GPU-2", Mig = true };
        Assert.Null(findings.OnDevice(hidden, 0));
        Assert.Null(findings.OnDevice(mig, 0));
        Assert.NotNull(findings.OnDevice(hidden, 31_000_000_000L));
        Assert.Null(findings.OnDevice(mig, 31_000_000_000L)); // under MIG, NVML may not list processes: not guessed
        Assert.Null(findings.OnDevice(hidden, 40_000_000_000L));
        Assert.Null(findings.OnDevice(hidden with { GpuPercent = 3 }, 50_000_000_000L)); // idle: armed again
        Assert.Null(findings.OnDevice(hidden, 60_000_000_000L));
        Assert.NotNull(findings.OnDevice(hidden, 91_000_000_000L));
    }

    [Fact]
    public void AnIntruderIsReportedOnceWithWhatItDid()
    {
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        var findings = new GpuIntruderFindings(PolicyLoader.BuiltIn);
        ProcessEntry trainer = Root("/usr/bin/python3 train.py");
        ProcessEntry miner = Process("/home/alice/project/t-rex -a kawpow", Process("/bin/sh -c ./t-rex", trainer));
        var gpu = new GpuActivity();
        gpu.Classes[0xC6C0] = 1;
        gpu.Classes[0xC56F] = 2;

        var alert = findings.OnGpuWork(miner, gpu, table, 1);
        Assert.NotNull(alert);
        Assert.Equal("gpu-intruder", alert.Rule);
        Assert.Contains(alert.Evidence, e => e.Key == "classes" && e.Value.Contains("AMPERE_COMPUTE_A", StringComparison.Ordinal));
        Assert.Null(findings.OnGpuWork(miner, gpu, table, 2));

        var opened = new GpuActivity { Opened = true };
        Assert.Null(findings.OnGpuWork(Process("/opt/x/other", null, 0), opened, table, 3)); // no compute work: nothing to judge
    }
}

/// <summary>GPU samples as NVML would give them, through the pipeline to ECS metric events and intruder findings.</summary>
public sealed class GpuSampleTests
{
    private readonly RecordingSink sink = new();
    private readonly ProcessTable table = new(EntityIds.ForThisBoot(), null, new UserNames());
    private readonly EventPipeline pipeline;

    public GpuSampleTests()
    {
        pipeline = Pipelines.Over(table, sink, PolicyDetectors.From(PolicyLoader.BuiltIn));
    }

    private static GpuDeviceSample Device(int index, bool mig, params GpuProcessSample[] processes) =>
        new(index, "NVIDIA H100 80GB HBM3", $"GPU-{index:x8}-0000-0000-0000-000000000000", 97, 40, 30UL << 30, 80UL << 30, 350_000, mig, processes)
        {
            UtilizationNote = mig ? "per-process utilisation is not available with MIG on" : null,
        };

    [Fact]
    public void DevicesAndTheirProcessesBecomeMetricEventsWithLineage()
    {
        int self = Environment.ProcessId;
        pipeline.OnGpuSamples([Device(0, false, new GpuProcessSample(self, 2UL << 30, 88, 30)), Device(1, true, new GpuProcessSample(self, 1UL << 30, null, null))], 1);

        var metrics = sink.Snapshot().Where(e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "metric").ToArray();
        Assert.Equal(["gpu-sample", "gpu-process-sample", "gpu-sample", "gpu-process-sample"], metrics.Select(m => m.Action));
        System.Text.Json.JsonElement device = metrics[0].Json.GetProperty("guard").GetProperty("gpu").GetProperty("device");
        Assert.Equal(97, device.GetProperty("utilization_percent").GetInt32());
        Assert.Equal(350.0, device.GetProperty("power_watts").GetDouble());
        Assert.Equal(self, metrics[1].Pid);
        Assert.Equal(88, metrics[1].Json.GetProperty("guard").GetProperty("gpu").GetProperty("usage").GetProperty("sm_percent").GetInt32());
        Assert.Contains("MIG", metrics[2].Json.GetProperty("guard").GetProperty("gpu").GetProperty("device").GetProperty("note").GetString(), StringComparison.Ordinal);
        Assert.False(metrics[3].Json.GetProperty("guard").GetProperty("gpu").GetProperty("usage").TryGetProperty("sm_percent", out _), "no utilisation is guessed under MIG");
        ProcessEntry me = table.Find(self)!;
        Assert.Equal(88u, me.GpuUsage![0].SmPercent); // kept in the table beside the lineage
        Assert.Equal(1UL << 30, me.GpuUsage[1].UsedMemoryBytes);
    }

    [Fact]
    public void AGpuProcessOutsideEveryJobIsAnIntruderOnce()
    {
        int self = Environment.ProcessId; // this test host: in no job, no GPU service
        for (int i = 0; i < 3; i++)
            pipeline.OnGpuSamples([Device(0, false, new GpuProcessSample(self, 2UL << 30, 88, 30))], i);
        Support.RecordedEvent alert = Assert.Single(sink.Snapshot(), e => e.Action == "gpu-intruder");
        Assert.Equal(self, alert.Pid);
        Assert.Contains("outside every training job", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("why").GetString(), StringComparison.Ordinal);
        Assert.Contains("2048 MiB, SM 88%", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("nvml").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ABusyGpuWithNoProcessIsAnAlertAboutTheDevice()
    {
        pipeline.OnGpuSamples([Device(3, false)], 0);
        pipeline.OnGpuSamples([Device(3, false)], 31_000_000_000L);
        Support.RecordedEvent alert = Assert.Single(sink.Snapshot(), e => e.Action == "gpu-intruder");
        Assert.Null(alert.Pid);
        Assert.Contains("GPU 3", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("device").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void WithoutNvmlTheSourceSaysWhyAndSamplesNothing()
    {
        using var nvml = new NvmlSource();
        if (File.Exists("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1") || File.Exists("/usr/lib64/libnvidia-ml.so.1"))
        {
            // A GPU host: NVML loads (the device script checks what it samples).
            Assert.DoesNotContain("not found", nvml.Status, StringComparison.Ordinal);
            return;
        }
        Assert.Equal("nvml: unavailable (libnvidia-ml.so.1 not found)", nvml.Status);
        Assert.False(nvml.Available);
        Assert.Empty(nvml.Sample());
    }
}

/// <summary>`guard gpu`'s view of NVML's processes: lineage from /proc, job roots by lineage, verdicts.</summary>
public sealed class GpuUsersTests
{
    [Fact]
    public void EachProcessOnAGpuGetsItsJobRootAndAVerdict()
    {
        using System.Diagnostics.Process trainer = Support.Run.PythonScript("import sys; sys.stdin.readline()");
        var device = new GpuDeviceSample(0, "NVIDIA H100", "GPU-0", 90, 40, 1, 2, null, false,
        [
            new GpuProcessSample(trainer.Id, 1UL << 30, 80, 20),
            new GpuProcessSample(Environment.ProcessId, 1UL << 20, 5, 1),
            new GpuProcessSample(int.MaxValue - 1, null, null, null),
        ]);
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        GpuDeviceReport report = Assert.Single(GpuUsers.Report([device], PolicyLoader.BuiltIn, table));
        Assert.Equal("worker", report.Users[0].Verdict); // python3 roots its own job
        Assert.Equal(trainer.Id, report.Users[0].JobRoot!.Pid);
        Assert.StartsWith("intruder: ", report.Users[1].Verdict, StringComparison.Ordinal); // this test host: no job, no GPU service
        Assert.Equal("exited", report.Users[2].Verdict);
        trainer.StandardInput.WriteLine();
        trainer.WaitForExit();
    }
}
