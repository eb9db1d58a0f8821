using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Output;
using Guard.Sensor.Processes;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// ECS lines byte for byte, one of each family that carries guard.job and
/// guard.ancestry: what a SIEM parses must not move when the encoder does.
/// </summary>
public sealed class EcsEncoderTests
{
    private const string Start =
        """{"@timestamp":"2023-11-14T22:13:21.000000Z","ecs":{"version":"8.11.0"},"agent":{"type":"guard","name":"guard","version":"1.0.0"},"host":{"hostname":"host-a","boot":{"id":"boot-a"}},""";

    private readonly EcsEncoder encoder = new(new RunInfo("host-a", "boot-a", "1.0.0", 1_700_000_000_000_000_000), new ArgumentRedactor());
    private readonly ProcessEntry miner;

    public EcsEncoderTests()
    {
        var job = new Job("slurm:42", "slurm", "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42");
        ProcessEntry init = Process(1, "systemd", null, null);
        ProcessEntry step = Process(100, "slurmstepd", init, job);
        miner = Process(200, "xmrig", step, job);
        miner.JobRootPid = 100;
    }

    private static ProcessEntry Process(int pid, string name, ProcessEntry? parent, Job? job) =>
        new(pid, pid * 10, $"boot-a-{pid}", ProcessOrigin.Fork)
        {
            Parent = parent,
            ParentPid = parent?.Pid ?? 0,
            Name = Encoding.UTF8.GetBytes(name),
            Executable = Encoding.UTF8.GetBytes("/usr/bin/" + name),
            Args = Encoding.UTF8.GetBytes(name + "\0--pass\0x"),
            Uid = 1000,
            CgroupJob = job,
        };

    private string Encode(SensorEvent e)
    {
        e.Sequence = 7;
        e.TimeNs = 1_000_000_000;
        var w = new JsonLineWriter();
        encoder.Encode(e, w);
        return Encoding.UTF8.GetString(w.Written);
    }

    [Fact]
    public void Exec()
    {
        var e = new ProcessEvent { Process = miner };
        e.Reset(EventType.Exec);
        Check("exec", Encode(e));
    }

    [Fact]
    public void Connect()
    {
        var e = new NetworkEvent { Process = miner, Cookie = 77, Family = 2, Protocol = 6, DestinationPort = 3333, SourcePort = 40000, Result = ConnectResult.Established };
        e.Reset(EventType.Connect);
        new byte[] { 10, 0, 0, 1 }.CopyTo(e.DestinationAddress, 0);
        new byte[] { 10, 0, 0, 2 }.CopyTo(e.SourceAddress, 0);
        Check("connect", Encode(e));
    }

    [Fact]
    public void GpuFirstIoctl() =>
        Check("gpu-first-ioctl", Encode(new GpuEvent { Process = miner, Kind = GpuEventKind.FirstIoctl, Major = 195, Minor = 0, Role = GpuRole.ResourceManager, Command = 0xc020462a }));

    [Fact]
    public void GpuProcessSample()
    {
        var device = new GpuDeviceSample(0, "NVIDIA H100", "GPU-0", 90, 40, 60UL << 30, 80UL << 30, 500_000, false, [new GpuProcessSample(200, 1UL << 30, 50, null)]);
        Check("gpu-process-sample", Encode(new GpuMetricEvent { Device = device, Sample = device.Processes[0], Process = miner }));
    }

    [Fact]
    public void Alert() =>
        Check("alert", Encode(new AlertEvent
        {
            Process = miner,
            Rule = "stratum",
            Description = "a Stratum mining message",
            Evidence = [new("destination", "10.0.0.1:3333")],
            Response = ["killed 1 process"],
        }));

    private static void Check(string name, string actual)
    {
        Assert.Equal(Expected[name], actual);
    }

    private static readonly Dictionary<string, string> Expected = new()
    {
        ["exec"] = Start + """
            "event":{"kind":"event","category":["process"],"type":["start"],"action":"exec","dataset":"guard.sensor","module":"guard","sequence":7},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"guard":{"job":{"id":"slurm:42","kind":"slurm","cgroup":"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42"},"job_root_pid":100,"ancestry":["boot-a-100","boot-a-1"]}}
            """ + "\n",
        ["connect"] = Start + """
            "event":{"kind":"event","category":["network"],"type":["connection"],"action":"connect","dataset":"guard.sensor","module":"guard","sequence":7,"outcome":"success"},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"destination":{"ip":"10.0.0.1","port":3333},"source":{"ip":"10.0.0.2","port":40000},"network":{"transport":"tcp","type":"ipv4"},"guard":{"job":{"id":"slurm:42","kind":"slurm"},"socket":{"cookie":77},"connect_result":"established"}}
            """ + "\n",
        ["gpu-first-ioctl"] = Start + """
            "event":{"kind":"event","category":["host"],"type":["info"],"action":"gpu-first-ioctl","dataset":"guard.sensor","module":"guard","sequence":7},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"guard":{"job":{"id":"slurm:42","kind":"slurm","cgroup":"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42"},"job_root_pid":100,"ancestry":["boot-a-100","boot-a-1"],"gpu":{"device":{"major":195,"minor":0,"role":"rm"},"ioctl_command":3223340586}}}
            """ + "\n",
        ["gpu-process-sample"] = Start + """
            "event":{"kind":"metric","category":["host"],"type":["info"],"action":"gpu-process-sample","dataset":"guard.gpu","module":"guard","sequence":7},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"guard":{"gpu":{"device":{"index":0,"name":"NVIDIA H100","uuid":"GPU-0"},"usage":{"memory_bytes":1073741824,"sm_percent":50}},"job":{"id":"slurm:42","kind":"slurm"}}}
            """ + "\n",
        ["alert"] = Start + """
            "event":{"kind":"alert","category":["process","malware"],"type":["info"],"action":"stratum","dataset":"guard.finding","module":"guard","sequence":7},"rule":{"name":"stratum","description":"a Stratum mining message","ruleset":"guard"},"threat":{"framework":"MITRE ATT&CK","tactic":{"id":["TA0040"],"name":["Impact"]},"technique":{"id":["T1496"],"name":["Resource Hijacking"]}},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"guard":{"finding":{"count":1,"evidence":{"destination":"10.0.0.1:3333"},"response":["killed 1 process"]},"job_root":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd"},"job":{"id":"slurm:42","kind":"slurm"},"ancestry":["boot-a-100","boot-a-1"]}}
            """ + "\n",
    };
}
