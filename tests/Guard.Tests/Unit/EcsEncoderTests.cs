using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Output;
using Guard.Sensor.Processes;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// ECS lines byte for byte, one of each family (process, network, GPU,
/// metric, alert, action): what a SIEM parses must not move when the encoder
/// does. Whether each field is what ECS says is EcsConformanceTests'.
/// </summary>
public sealed class EcsEncoderTests
{
    private const string Start =
        """{"@timestamp":"2023-11-14T22:13:21.000000Z","ecs":{"version":"8.11.0"},"agent":{"type":"guard","name":"guard","version":"1.0.0"},"host":{"name":"host-a","hostname":"host-a","boot":{"id":"boot-a"}},""";

    /// <summary>Lines written 2.5 s after boot (event.created), about what happened 1 s after it (@timestamp).</summary>
    private readonly EcsEncoder encoder = new(new RunInfo("host-a", "boot-a", "1.0.0", 1_700_000_000_000_000_000), new ArgumentRedactor(), () => 2_500_000_000);
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
        new(pid, pid / 10, $"boot-a-{pid}", ProcessOrigin.Fork)
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
    public void Exit()
    {
        var e = new ProcessEvent { Process = miner, ExitStatus = 9 };
        e.Reset(EventType.Exit);
        Check("exit", Encode(e));
    }

    [Fact]
    public void Payload()
    {
        var e = new NetworkEvent { Process = miner, Cookie = 77, Family = 2, Protocol = 6, DestinationPort = 3333, DataLength = 5, Segments = 1 };
        e.Reset(EventType.Payload);
        new byte[] { 10, 0, 0, 1 }.CopyTo(e.DestinationAddress, 0);
        "{\"id\""u8.CopyTo(e.Data);
        Check("payload", Encode(e));
    }

    [Fact]
    public void Dns()
    {
        var e = new NetworkEvent { Process = miner, Cookie = 78, Family = 2, Protocol = 17, DestinationPort = 53, DataLength = 11, DnsQueryType = 1, DnsId = 0x4242 };
        e.Reset(EventType.Dns);
        new byte[] { 127, 0, 0, 53 }.CopyTo(e.DestinationAddress, 0);
        "pool.xmr.pt"u8.CopyTo(e.Data);
        Check("dns", Encode(e));
    }

    [Fact]
    public void Hold() =>
        Check("quarantine", Encode(new ActionEvent
        {
            Process = miner,
            Action = "quarantine",
            Succeeded = true,
            Message = "held slurm:42",
            OrderedBy = "miner-in-job",
            OrderedByUid = 0,
            Pids = [100, 200],
            CgroupPath = "/system.slice/slurmstepd.scope/job_42",
        }));

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
            Evidence = [new("destination", "10.0.0.1:3333"), new("in_job", "true"), new("port", "3333"), new("pool-port.0", "10.0.0.1:3333")],
            Response = ["killed 1 process"],
        }));

    private static void Check(string name, string actual)
    {
        Assert.Equal(Expected[name], actual);
    }

    private static readonly Dictionary<string, string> Expected = new()
    {
        ["exec"] = Start + """
            "event":{"kind":"event","category":["process"],"type":["start"],"action":"exec","dataset":"guard.sensor","module":"guard","sequence":7},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"guard":{"job":{"id":"slurm:42","kind":"slurm","cgroup":"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42"},"job_root_pid":100,"ancestry":["boot-a-100","boot-a-1"]}}
            """ + "\n",
        ["exit"] = Start + """
            "event":{"kind":"event","category":["process"],"type":["end"],"action":"exit","dataset":"guard.sensor","module":"guard","sequence":7},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}},"exit_code":137,"end":"2023-11-14T22:13:21.000000Z"},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"guard":{"exit":{"signal":9,"core_dumped":false},"job":{"id":"slurm:42","kind":"slurm","cgroup":"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42"},"job_root_pid":100,"ancestry":["boot-a-100","boot-a-1"]}}
            """ + "\n",
        ["connect"] = Start + """
            "event":{"kind":"event","category":["network"],"type":["connection"],"action":"connect","dataset":"guard.sensor","module":"guard","sequence":7,"outcome":"success"},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"destination":{"ip":"10.0.0.1","port":3333},"source":{"ip":"10.0.0.2","port":40000},"network":{"transport":"tcp","type":"ipv4"},"guard":{"job":{"id":"slurm:42","kind":"slurm"},"socket":{"cookie":77}}}
            """ + "\n",
        ["payload"] = Start + """
            "event":{"kind":"event","category":["network"],"type":["info"],"action":"payload","dataset":"guard.sensor","module":"guard","sequence":7,"created":"2023-11-14T22:13:22.500000Z"},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"destination":{"ip":"10.0.0.1","port":3333},"network":{"transport":"tcp","type":"ipv4"},"guard":{"job":{"id":"slurm:42","kind":"slurm"},"socket":{"cookie":77},"payload":{"length":5,"segments":1,"data":"{\"id\""}}}
            """ + "\n",
        ["dns"] = Start + """
            "event":{"kind":"event","category":["network"],"type":["protocol"],"action":"dns-query","dataset":"guard.sensor","module":"guard","sequence":7},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"destination":{"ip":"127.0.0.53","port":53},"network":{"transport":"udp","type":"ipv4","protocol":"dns"},"dns":{"type":"query","id":"16962","question":{"name":"pool.xmr.pt","type":"A"}},"guard":{"job":{"id":"slurm:42","kind":"slurm"},"socket":{"cookie":78}}}
            """ + "\n",
        ["gpu-first-ioctl"] = Start + """
            "event":{"kind":"event","category":["driver"],"type":["info"],"action":"gpu-first-ioctl","dataset":"guard.sensor","module":"guard","sequence":7},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"guard":{"job":{"id":"slurm:42","kind":"slurm","cgroup":"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42"},"job_root_pid":100,"ancestry":["boot-a-100","boot-a-1"],"gpu":{"device":{"major":195,"minor":0,"role":"rm"},"ioctl_command":3223340586}}}
            """ + "\n",
        ["gpu-process-sample"] = Start + """
            "event":{"kind":"metric","category":["process"],"type":["info"],"action":"gpu-process-sample","dataset":"guard.gpu","module":"guard","sequence":7},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"guard":{"gpu":{"device":{"index":0,"name":"NVIDIA H100","uuid":"GPU-0"},"usage":{"memory_bytes":1073741824,"sm_percent":50}},"job":{"id":"slurm:42","kind":"slurm"}}}
            """ + "\n",
        ["alert"] = Start + """
            "event":{"kind":"alert","category":["process","malware"],"type":["info"],"action":"stratum","dataset":"guard.finding","module":"guard","sequence":7,"severity":3,"risk_score":73,"created":"2023-11-14T22:13:22.500000Z"},"rule":{"name":"stratum","description":"a Stratum mining message","ruleset":"guard"},"threat":{"framework":"MITRE ATT&CK","tactic":{"id":["TA0040"],"name":["Impact"]},"technique":{"id":["T1496"],"name":["Resource Hijacking"]}},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"guard":{"finding":{"count":1,"evidence":{"destination":"10.0.0.1:3333","in_job":true,"port":3333,"pool-port_0":"10.0.0.1:3333"},"response":["killed 1 process"]},"job_root":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd"},"job":{"id":"slurm:42","kind":"slurm"},"ancestry":["boot-a-100","boot-a-1"]}}
            """ + "\n",
        ["quarantine"] = Start + """
            "event":{"kind":"event","category":["process"],"type":["change"],"action":"quarantine","dataset":"guard.response","module":"guard","sequence":7,"outcome":"success","reason":"held slurm:42"},"process":{"pid":200,"entity_id":"boot-a-200","name":"xmrig","start":"2023-11-14T22:13:20.200000Z","executable":"/usr/bin/xmrig","args":["xmrig","--pass","[REDACTED]"],"args_count":3,"command_line":"xmrig --pass [REDACTED]","user":{"id":"1000"},"parent":{"pid":100,"entity_id":"boot-a-100","name":"slurmstepd","start":"2023-11-14T22:13:20.100000Z","executable":"/usr/bin/slurmstepd","args":["slurmstepd","--pass","[REDACTED]"],"args_count":3,"command_line":"slurmstepd --pass [REDACTED]","user":{"id":"1000"}}},"orchestrator":{"type":"slurm","resource":{"type":"job","id":"42"}},"user":{"id":"0"},"guard":{"action":{"ordered_by":{"via":"miner-in-job"},"pids":[100,200],"cgroup":"/system.slice/slurmstepd.scope/job_42"}}}
            """ + "\n",
    };
}
