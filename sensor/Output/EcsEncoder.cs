using System.Buffers.Text;
using System.Net;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Output;

/// <summary>Facts about this run that every event carries (agent.*, host.*).</summary>
public sealed record RunInfo(string HostName, string BootId, string AgentVersion, long RealtimeMinusBoottimeNs)
{
    public static RunInfo ForThisHost(string version) => new(
        Environment.MachineName,
        File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(),
        version,
        Libc.NowNs(Libc.ClockRealtime) - Libc.NowNs(Libc.ClockBoottime));

    public DateTime WallClock(long bootNs) =>
        DateTime.UnixEpoch.AddTicks((bootNs + RealtimeMinusBoottimeNs) / 100);
}

/// <summary>
/// Writes an event as one Elastic Common Schema object: ECS names where ECS
/// has them, guard.* for what it lacks (job, GPU, payload, health).
/// </summary>
public sealed class EcsEncoder
{
    public const string EcsVersion = "8.11.0";

    private readonly RunInfo run;
    private readonly ArgumentRedactor redactor;
    private readonly byte[] runFields;
    private readonly JsonLineWriter processScratch = new();
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<ProcessEntry, RenderedProcess> rendered = new();
    private readonly byte[] scratch = new byte[2048];
    private byte[] commandLine = new byte[2048];

    public EcsEncoder(RunInfo run, ArgumentRedactor redactor)
    {
        this.run = run;
        this.redactor = redactor;
        runFields = RenderRunFields(run);
    }

    /// <summary>ecs.*, agent.* and host.* are the same on every line: rendered once.</summary>
    private static byte[] RenderRunFields(RunInfo run)
    {
        var w = new JsonLineWriter();
        w.StartObject();
        w.StartObject("ecs"u8);
        w.Text("version"u8, EcsVersion);
        w.EndObject();
        w.StartObject("agent"u8);
        w.Text("type"u8, "guard");
        w.Text("name"u8, "guard");
        w.Text("version"u8, run.AgentVersion);
        w.EndObject();
        w.StartObject("host"u8);
        w.Text("hostname"u8, run.HostName);
        w.StartObject("boot"u8);
        w.Text("id"u8, run.BootId);
        w.EndObject();
        w.EndObject();
        w.EndObject();
        return w.Written[1..^1].ToArray();
    }

    public void Encode(SensorEvent e, JsonLineWriter w)
    {
        w.Clear();
        w.StartObject();
        Timestamp(w, "@timestamp"u8, e.TimeNs);
        w.RawMembers(runFields);

        switch (e)
        {
            case ProcessEvent p:
                EventHeader(w, e.Sequence, p.Type == EventType.Exit ? "end"u8 : "start"u8, "process"u8, ActionName(p.Type));
                Process(w, p.Process, p);
                Guard(w, p.Process, null, p.Type == EventType.Exit ? p : null);
                break;
            case NetworkEvent n:
                Network(w, n);
                break;
            case GpuEvent g:
                EventHeader(w, e.Sequence, g.Kind == GpuEventKind.Open ? "access"u8 : "info"u8, "host"u8, g.Kind switch
                {
                    GpuEventKind.Open => "gpu-open"u8,
                    GpuEventKind.FirstIoctl => "gpu-first-ioctl"u8,
                    _ => "gpu-activity"u8,
                });
                Process(w, g.Process, null);
                Guard(w, g.Process, g, null);
                break;
            case GpuMetricEvent m:
                GpuMetric(w, m);
                break;
            case HeartbeatEvent h:
                Heartbeat(w, h);
                break;
            case ActionEvent a:
                Action(w, a);
                break;
            case AlertEvent alert:
                Alert(w, alert);
                break;
        }
        w.EndLine();
    }

    private static ReadOnlySpan<byte> ActionName(EventType type) => type switch
    {
        EventType.Exec => "exec"u8,
        EventType.Fork => "fork"u8,
        EventType.Exit => "exit"u8,
        EventType.Connect => "connect"u8,
        EventType.Payload => "payload"u8,
        EventType.Dns => "dns-query"u8,
        _ => "heartbeat"u8,
    };

    private void Timestamp(JsonLineWriter w, ReadOnlySpan<byte> name, long bootNs)
    {
        // yyyy-MM-ddTHH:mm:ss.ffffffZ, by hand: a format string is parsed on every call.
        DateTime t = run.WallClock(bootNs);
        Span<byte> text = stackalloc byte[27];
        Digits(text[..4], t.Year);
        text[4] = (byte)'-';
        Digits(text.Slice(5, 2), t.Month);
        text[7] = (byte)'-';
        Digits(text.Slice(8, 2), t.Day);
        text[10] = (byte)'T';
        Digits(text.Slice(11, 2), t.Hour);
        text[13] = (byte)':';
        Digits(text.Slice(14, 2), t.Minute);
        text[16] = (byte)':';
        Digits(text.Slice(17, 2), t.Second);
        text[19] = (byte)'.';
        Digits(text.Slice(20, 6), (int)(t.Ticks % TimeSpan.TicksPerSecond / 10));
        text[26] = (byte)'Z';
        w.AsciiString(name, text);
    }

    private static void Digits(Span<byte> into, int value)
    {
        for (int i = into.Length - 1; i >= 0; i--)
        {
            into[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }

    /// <summary>event.*: every line's, whatever its kind.</summary>
    private static void EventHeader(
        JsonLineWriter w, long sequence, ReadOnlySpan<byte> type, ReadOnlySpan<byte> category, ReadOnlySpan<byte> action,
        ReadOnlySpan<byte> outcome = default, ReadOnlySpan<byte> kind = default, ReadOnlySpan<byte> dataset = default,
        ReadOnlySpan<byte> secondCategory = default, string? reason = null)
    {
        w.StartObject("event"u8);
        w.AsciiString("kind"u8, kind.IsEmpty ? "event"u8 : kind);
        w.StartArray("category"u8);
        w.TextItem(category);
        if (!secondCategory.IsEmpty)
            w.TextItem(secondCategory);
        w.EndArray();
        w.StartArray("type"u8);
        w.TextItem(type);
        w.EndArray();
        w.Text("action"u8, action);
        w.AsciiString("dataset"u8, dataset.IsEmpty ? "guard.sensor"u8 : dataset);
        w.AsciiString("module"u8, "guard"u8);
        w.Number("sequence"u8, sequence);
        if (!outcome.IsEmpty)
            w.AsciiString("outcome"u8, outcome);
        if (reason is not null)
            w.Text("reason"u8, reason);
        w.EndObject();
    }

    /// <summary>threat.*, the same on every alert: MITRE ATT&amp;CK T1496, rendered once.</summary>
    private static readonly byte[] ThreatMembers = RenderThreat();

    private static byte[] RenderThreat()
    {
        var w = new JsonLineWriter();
        w.StartObject();
        w.StartObject("threat"u8);
        w.AsciiString("framework"u8, "MITRE ATT&CK"u8);
        Entry(w, "tactic"u8, "TA0040"u8, "Impact"u8);
        Entry(w, "technique"u8, "T1496"u8, "Resource Hijacking"u8);
        w.EndObject();
        w.EndObject();
        return w.Written[1..^1].ToArray();

        // ECS keeps id and name of a tactic or technique as arrays.
        static void Entry(JsonLineWriter w, ReadOnlySpan<byte> key, ReadOnlySpan<byte> id, ReadOnlySpan<byte> name)
        {
            w.StartObject(key);
            w.StartArray("id"u8);
            w.TextItem(id);
            w.EndArray();
            w.StartArray("name"u8);
            w.TextItem(name);
            w.EndArray();
            w.EndObject();
        }
    }

    private void Process(JsonLineWriter w, ProcessEntry? p, ProcessEvent? exit)
    {
        if (p is null)
            return;
        w.StartObject("process"u8);
        w.RawMembers(ProcessMembers(p, mayCache: exit is null));
        if (exit is { Type: EventType.Exit })
        {
            w.Number("exit_code"u8, exit.ExitSignal != 0 ? 128 + exit.ExitSignal : exit.ExitCode);
            Timestamp(w, "end"u8, exit.TimeNs);
        }
        w.EndObject();
    }

    /// <summary>
    /// process.* with its parent, rendered once per revision of the two: a
    /// process that connects a thousand times is encoded once. Kept from the
    /// third showing on, and never for an exit, so a process seen only at
    /// exec, once more and at exit costs no memory here.
    /// </summary>
    private ReadOnlySpan<byte> ProcessMembers(ProcessEntry p, bool mayCache)
    {
        RenderedProcess cached = rendered.GetValue(p, static _ => new RenderedProcess());
        long parentRevision = p.Parent?.Revision ?? -1;
        if (cached.Members is { } members && cached.Revision == p.Revision && cached.ParentRevision == parentRevision)
            return members;
        processScratch.Clear();
        processScratch.StartObject();
        ProcessFields(processScratch, p);
        if (p.Parent is { } parent)
        {
            processScratch.StartObject("parent"u8);
            ProcessFields(processScratch, parent);
            processScratch.EndObject();
        }
        else if (p.ParentPid > 0)
        {
            processScratch.StartObject("parent"u8);
            processScratch.Number("pid"u8, p.ParentPid);
            processScratch.EndObject();
        }
        processScratch.EndObject();
        ReadOnlySpan<byte> rendering = processScratch.Written[1..^1];
        if (mayCache && ++cached.Showings >= 3)
        {
            cached.Members = rendering.ToArray();
            cached.Revision = p.Revision;
            cached.ParentRevision = parentRevision;
        }
        return rendering;
    }

    private sealed class RenderedProcess
    {
        public byte[]? Members;
        public long Revision;
        public long ParentRevision;
        public int Showings;
    }

    private void ProcessFields(JsonLineWriter w, ProcessEntry p)
    {
        w.Number("pid"u8, p.Pid);
        w.Text("entity_id"u8, p.EntityIdUtf8);
        w.Text("name"u8, p.Name);
        if (p.Executable.Length > 0)
            w.Text("executable"u8, p.Executable);
        Arguments(w, p.Args);
        if (p.WorkingDirectory is { } cwd)
            w.Text("working_directory"u8, cwd);
        w.StartObject("user"u8);
        Span<byte> id = stackalloc byte[12];
        Utf8Formatter.TryFormat(p.Uid, id, out int n);
        w.AsciiString("id"u8, id[..n]);
        if (p.UserName is { } user)
            w.Text("name"u8, user);
        w.EndObject();
    }

    private void Arguments(JsonLineWriter w, byte[] args)
    {
        if (args.Length == 0)
            return;
        if (commandLine.Length < args.Length * 2)
            commandLine = new byte[args.Length * 2];
        int lineLength = 0;
        int count = 0;
        bool secretNext = false;
        w.StartArray("args"u8);
        foreach (Range r in args.AsSpan().Split((byte)0))
        {
            ReadOnlySpan<byte> arg = redactor.Redact(args.AsSpan()[r], ref secretNext, scratch);
            w.TextItem(arg);
            if (lineLength + arg.Length + 1 > commandLine.Length)
                Array.Resize(ref commandLine, (lineLength + arg.Length + 1) * 2);
            if (count > 0)
                commandLine[lineLength++] = (byte)' ';
            arg.CopyTo(commandLine.AsSpan(lineLength));
            lineLength += arg.Length;
            count++;
        }
        w.EndArray();
        w.Number("args_count"u8, count);
        w.Text("command_line"u8, commandLine.AsSpan(0, lineLength));
    }

    private static void Guard(JsonLineWriter w, ProcessEntry? p, GpuEvent? gpu, ProcessEvent? exit)
    {
        if (p is null && gpu is null && exit is null)
            return;
        w.StartObject("guard"u8);
        if (exit is not null)
        {
            w.StartObject("exit"u8);
            w.Number("code"u8, exit.ExitCode);
            w.Number("signal"u8, exit.ExitSignal);
            w.Bool("core_dumped"u8, exit.CoreDumped);
            w.EndObject();
        }
        if (p?.Job is { } job)
        {
            w.StartObject("job"u8);
            w.Text("id"u8, job.Id);
            w.Text("kind"u8, job.Kind);
            w.Text("cgroup"u8, job.CgroupPath);
            w.EndObject();
        }
        if (p is { ArgsTruncated: true })
            w.Bool("args_truncated"u8, true);
        if (p?.Staging is { } staging)
            w.Text("staging"u8, staging);
        if (p is { JobRootPid: > 0 })
            w.Number("job_root_pid"u8, p.JobRootPid);
        if (p is not null)
        {
            w.StartArray("ancestry"u8);
            for (ProcessEntry? a = p.Parent; a is not null; a = a.Parent)
                w.TextItem(a.EntityIdUtf8);
            w.EndArray();
        }
        if (gpu is not null)
            Gpu(w, gpu);
        w.EndObject();
    }

    private static readonly (GpuWork Flag, string Name)[] WorkNames =
    [
        (GpuWork.Opened, "opened"), (GpuWork.Memory, "memory"), (GpuWork.Channel, "channel"),
        (GpuWork.Compute, "compute"), (GpuWork.UnifiedMemory, "uvm"),
    ];

    private static string KindName(GpuObjectKind kind) => kind switch
    {
        GpuObjectKind.Client => "client",
        GpuObjectKind.Device => "device",
        GpuObjectKind.Memory => "memory",
        GpuObjectKind.AddressSpace => "address-space",
        GpuObjectKind.ChannelGroup => "channel-group",
        GpuObjectKind.Channel => "channel",
        GpuObjectKind.Compute => "compute",
        _ => "copy",
    };

    private static void Gpu(JsonLineWriter w, GpuEvent g)
    {
        w.StartObject("gpu"u8);
        w.StartObject("device"u8);
        w.Number("major"u8, g.Major);
        w.Number("minor"u8, g.Minor);
        w.AsciiString("role"u8, g.Role == GpuRole.UnifiedMemory ? "uvm"u8 : "rm"u8);
        w.EndObject();
        if (g.Kind == GpuEventKind.Open)
            w.Number("access"u8, g.Access);
        if (g.Kind == GpuEventKind.FirstIoctl)
            w.Number("ioctl_command"u8, g.Command);
        if (g.Activity is { } a)
        {
            w.StartObject("ioctls"u8);
            w.Number("rm_alloc"u8, a.Counts[(int)IoctlKind.RmAlloc]);
            w.Number("rm_free"u8, a.Counts[(int)IoctlKind.RmFree]);
            w.Number("rm_control"u8, a.Counts[(int)IoctlKind.RmControl]);
            w.Number("rm_map"u8, a.Counts[(int)IoctlKind.RmMap]);
            w.Number("rm_other"u8, a.Counts[(int)IoctlKind.RmOther]);
            w.Number("uvm"u8, a.Counts[(int)IoctlKind.Uvm]);
            w.EndObject();
            w.StartArray("classes"u8);
            Span<byte> hex = stackalloc byte[10];
            foreach ((uint cls, ulong count) in a.Classes)
            {
                w.StartObject();
                hex[0] = (byte)'0';
                hex[1] = (byte)'x';
                Utf8Formatter.TryFormat(cls, hex[2..], out int n, new System.Buffers.StandardFormat('x', 4));
                w.AsciiString("class"u8, hex[..(n + 2)]);
                if (GpuClasses.Find(cls) is { } known)
                {
                    w.Text("name"u8, known.Name);
                    w.Text("kind"u8, KindName(known.Kind));
                }
                w.Number("count"u8, count);
                w.EndObject();
            }
            w.EndArray();
            GpuWork work = a.Work;
            w.StartArray("work"u8);
            foreach ((GpuWork flag, string name) in WorkNames)
            {
                if ((work & flag) != 0)
                    w.TextItem(name);
            }
            w.EndArray();
        }
        w.EndObject();
    }

    private void Network(JsonLineWriter w, NetworkEvent n)
    {
        switch (n.Type)
        {
            case EventType.Connect:
                // event.outcome carries the result; UDP has no handshake to report.
                EventHeader(w, n.Sequence, "connection"u8, "network"u8, "connect"u8, n.Result switch
                {
                    ConnectResult.Established => "success"u8,
                    ConnectResult.Failed => "failure"u8,
                    _ => "unknown"u8,
                });
                break;
            case EventType.Payload:
                EventHeader(w, n.Sequence, "info"u8, "network"u8, "payload"u8);
                break;
            default:
                EventHeader(w, n.Sequence, "protocol"u8, "network"u8, "dns-query"u8);
                break;
        }
        Process(w, n.Process, null);
        w.StartObject("destination"u8);
        Address(w, n.Family, n.DestinationAddress);
        w.Number("port"u8, n.DestinationPort);
        w.EndObject();
        if (n.Type == EventType.Connect && n.SourcePort != 0)
        {
            w.StartObject("source"u8);
            Address(w, n.Family, n.SourceAddress);
            w.Number("port"u8, n.SourcePort);
            w.EndObject();
        }
        w.StartObject("network"u8);
        w.AsciiString("transport"u8, n.Protocol == 17 || n.Type == EventType.Dns ? "udp"u8 : "tcp"u8);
        w.AsciiString("type"u8, n.Family == 10 ? "ipv6"u8 : "ipv4"u8);
        w.EndObject();
        if (n.Type == EventType.Dns)
        {
            w.StartObject("dns"u8);
            w.AsciiString("type"u8, "query"u8);
            w.Number("id"u8, n.DnsId);
            w.StartObject("question"u8);
            w.Text("name"u8, n.DataSpan);
            w.AsciiString("type"u8, DnsNames.TypeName(n.DnsQueryType));
            w.EndObject();
            w.EndObject();
        }
        w.StartObject("guard"u8);
        if (n.Process?.Job is { } job)
        {
            w.StartObject("job"u8);
            w.Text("id"u8, job.Id);
            w.Text("kind"u8, job.Kind);
            w.EndObject();
        }
        w.StartObject("socket"u8);
        w.Number("cookie"u8, n.Cookie);
        w.EndObject();
        if (n.Type == EventType.Connect)
        {
            w.AsciiString("connect_result"u8, n.Result switch
            {
                ConnectResult.Established => "established"u8,
                ConnectResult.Failed => "failed"u8,
                _ => "udp"u8,
            });
        }
        if (n.Type == EventType.Payload)
        {
            w.StartObject("payload"u8);
            w.Number("length"u8, n.DataLength);
            w.Number("segments"u8, n.Segments);
            w.Text("data"u8, n.DataSpan);
            w.EndObject();
        }
        w.EndObject();
    }

    private static void Address(JsonLineWriter w, int family, byte[] address)
    {
        Span<byte> text = stackalloc byte[48];
        int n;
        if (family == 2)
        {
            n = 0;
            for (int i = 0; i < 4; i++)
            {
                if (i > 0)
                    text[n++] = (byte)'.';
                Utf8Formatter.TryFormat(address[i], text[n..], out int k);
                n += k;
            }
        }
        else
        {
            new IPAddress(address.AsSpan(0, 16)).TryFormat(text, out n);
        }
        w.AsciiString("ip"u8, text[..n]);
    }

    private void Alert(JsonLineWriter w, AlertEvent a)
    {
        EventHeader(w, a.Sequence, "info"u8, "process"u8, System.Text.Encoding.UTF8.GetBytes(a.Rule),
            kind: "alert"u8, dataset: "guard.finding"u8, secondCategory: "malware"u8);
        w.StartObject("rule"u8);
        w.Text("name"u8, a.Rule);
        w.Text("description"u8, a.Description);
        w.AsciiString("ruleset"u8, "guard"u8);
        w.EndObject();
        w.RawMembers(ThreatMembers);
        Process(w, a.Process, null);
        w.StartObject("guard"u8);
        w.StartObject("finding"u8);
        w.Number("count"u8, a.Count);
        w.StartObject("evidence"u8);
        foreach ((string key, string value) in a.Evidence)
            w.Text(System.Text.Encoding.UTF8.GetBytes(key), value);
        w.EndObject();
        w.StartArray("response"u8);
        foreach (string r in a.Response)
            w.TextItem(r);
        w.EndArray();
        w.EndObject();
        if (a.JobRoot is { } root)
        {
            w.StartObject("job_root"u8);
            w.Number("pid"u8, root.Pid);
            w.Text("entity_id"u8, root.EntityIdUtf8);
            w.Text("name"u8, root.Name);
            w.EndObject();
        }
        if (a.Process is { } p)
        {
            if (p.Job is { } job)
            {
                w.StartObject("job"u8);
                w.Text("id"u8, job.Id);
                w.Text("kind"u8, job.Kind);
                w.EndObject();
            }
            w.StartArray("ancestry"u8);
            for (ProcessEntry? ancestor = p.Parent; ancestor is not null; ancestor = ancestor.Parent)
                w.TextItem(ancestor.EntityIdUtf8);
            w.EndArray();
        }
        w.EndObject();
    }

    private void Action(JsonLineWriter w, ActionEvent a)
    {
        EventHeader(w, a.Sequence, a.Succeeded ? "end"u8 : "denied"u8, "process"u8, System.Text.Encoding.UTF8.GetBytes(a.Action),
            a.Succeeded ? "success"u8 : "failure"u8, dataset: "guard.response"u8, reason: a.Message);
        Process(w, a.Process, null);
        w.StartObject("guard"u8);
        w.StartObject("action"u8);
        w.StartObject("ordered_by"u8);
        w.Text("via"u8, a.OrderedBy);
        w.Number("uid"u8, a.OrderedByUid);
        w.EndObject();
        w.StartArray("pids"u8);
        foreach (int pid in a.Pids)
            w.NumberItem(pid);
        w.EndArray();
        if (a.CgroupPath is { } cgroup)
            w.Text("cgroup"u8, cgroup);
        w.EndObject();
        w.EndObject();
    }

    private void GpuMetric(JsonLineWriter w, GpuMetricEvent m)
    {
        EventHeader(w, m.Sequence, "info"u8, "host"u8, m.Sample is null ? "gpu-sample"u8 : "gpu-process-sample"u8, kind: "metric"u8, dataset: "guard.gpu"u8);
        if (m.Sample is not null)
            Process(w, m.Process, null);
        GpuDeviceSample d = m.Device;
        w.StartObject("guard"u8);
        w.StartObject("gpu"u8);
        w.StartObject("device"u8);
        w.Number("index"u8, d.Index);
        w.Text("name"u8, d.Name);
        w.Text("uuid"u8, d.Uuid);
        if (m.Sample is null)
        {
            w.Number("utilization_percent"u8, d.GpuPercent);
            w.Number("memory_utilization_percent"u8, d.MemoryPercent);
            w.Number("memory_used_bytes"u8, d.MemoryUsedBytes);
            w.Number("memory_total_bytes"u8, d.MemoryTotalBytes);
            if (d.PowerMilliwatts is uint mw)
                w.Number("power_watts"u8, mw / 1000.0);
            w.Bool("mig"u8, d.Mig);
            w.Number("processes"u8, d.Processes.Count);
            if (d.UtilizationNote is { } note)
                w.Text("note"u8, note);
        }
        w.EndObject();
        if (m.Sample is { } s)
        {
            w.StartObject("usage"u8);
            if (s.UsedMemoryBytes is ulong bytes)
                w.Number("memory_bytes"u8, bytes);
            if (s.SmPercent is uint sm)
                w.Number("sm_percent"u8, sm);
            if (s.MemoryPercent is uint mem)
                w.Number("memory_percent"u8, mem);
            w.EndObject();
        }
        w.EndObject();
        if (m.Process?.Job is { } job)
        {
            w.StartObject("job"u8);
            w.Text("id"u8, job.Id);
            w.Text("kind"u8, job.Kind);
            w.EndObject();
        }
        w.EndObject();
    }

    private static void Heartbeat(JsonLineWriter w, HeartbeatEvent h)
    {
        EventHeader(w, h.Sequence, "info"u8, "host"u8, "heartbeat"u8, kind: "metric"u8, dataset: "guard.health"u8);
        w.StartObject("guard"u8);
        w.StartObject("health"u8);
        w.Number("uptime_seconds"u8, Math.Round(h.UptimeSeconds, 3));
        w.Number("events"u8, h.Events);
        w.Number("decode_failures"u8, h.DecodeFailures);
        w.Number("processes"u8, h.Processes);
        w.StartObject("drops"u8);
        w.Number("total"u8, h.Drops);
        for (int kind = 1; kind < h.DropsByKind.Length; kind++)
            w.Number(RecordNames.Utf8((RecordKind)kind), h.DropsByKind[kind]);
        w.EndObject();
        w.StartObject("hashes"u8);
        w.Number("dropped"u8, h.HashesDropped);
        w.Number("timed_out"u8, h.HashesTimedOut);
        w.EndObject();
        w.EndObject();
        w.EndObject();
    }
}
