using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Output;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// The user-space flow for each record: decode (done by the caller), update
/// the process table, build the event, filter, hand to the sink. One thread,
/// no locks; events are reused instances, so a record costs no allocation
/// beyond what the table must keep.
/// </summary>
public sealed class EventPipeline : IRecordHandler
{
    /// <summary>A connection's first bytes are out once no more came for this long.</summary>
    public const long PayloadQuietNs = 250_000_000;

    private const long EmittedCookieRetentionNs = 60_000_000_000;

    private readonly ProcessTable table;
    private readonly IEventSink sink;
    private readonly EventFilter filter;
    private readonly ProcessEvent processEvent = new();
    private readonly NetworkEvent networkEvent = new();
    private readonly GpuEvent gpuEvent = new();
    private readonly GpuMetricEvent gpuMetric = new();
    // Pending first bytes, oldest update first, so Tick visits only what is due.
    private readonly Dictionary<ulong, PendingPayload> pendingPayloads = [];
    private readonly LinkedList<PendingPayload> pendingByAge = new();
    private readonly Stack<PendingPayload> payloadPool = new();
    // Connections whose first bytes are out, forgotten in the order they went.
    private readonly HashSet<ulong> emittedPayloads = [];
    private readonly Queue<(long DueNs, ulong Cookie)> emittedByAge = new();
    private readonly List<(uint Pid, uint Slot, ulong Count)> counts = [];
    private readonly HashSet<ProcessEntry> gpuChanged = [];
    private readonly Detection.AlertCounts alertCounts = new();
    private readonly List<AlertEvent> dueAlerts = [];
    private long sequence;

    public EventPipeline(ProcessTable table, IEventSink sink, EventFilter filter)
    {
        this.table = table;
        this.sink = sink;
        this.filter = filter;
    }

    /// <summary>Reads the kernel's GPU counters; null when the ioctl program is not loaded.</summary>
    public IoctlCounters? GpuCounters { get; set; }

    public long EventsEmitted { get; private set; }

    public long[] EmittedByType { get; } = new long[Enum.GetValues<EventType>().Length];

    public ProcessTable Table => table;

    public void OnExec(in ExecRecord record)
    {
        ProcessEntry entry = table.OnExec(record);
        EmitProcess(EventType.Exec, entry, (long)record.Header.TimeNs, 0);
        if (Detection is not { } detection || detection.Allowed.Allows(entry))
            return;
        if (detection.KnownMiners.OnExec(entry, record, table) is { } verdict)
        {
            Respond(verdict); // the kernel has killed it already; its job is left to the response
            return;
        }
        if ((detection.Arguments.OnExec(entry, (long)record.Header.TimeNs) ?? detection.Hashes.OnExec(entry, (long)record.Header.TimeNs)) is { } alert)
        {
            Respond(alert);
        }
        if (detection.Weak.OnExec(entry, (long)record.Header.TimeNs) is { } weak)
            Emit(weak);
    }

    /// <summary>The policy's detectors; null runs the sensor without findings.</summary>
    public Detection.PolicyDetectors? Detection { get; set; }

    /// <summary>Acts on findings; null only reports them.</summary>
    public Response.Responder? Responder { get; set; }

    /// <summary>Keeps every action event for `guard status`, whatever the filter shows.</summary>
    public ActionLog? ActionLog { get; init; }

    public void OnFork(in ForkRecord record)
    {
        ProcessEntry entry = table.OnFork(record);
        EmitProcess(EventType.Fork, entry, (long)record.Header.TimeNs, 0);
    }

    public void OnExit(in ExitRecord record)
    {
        long now = (long)record.Header.TimeNs;
        ProcessEntry? entry = table.OnExit(record, now);
        if (entry?.Gpu is not null && GpuCounters is { } counters)
        {
            // The last word on its GPU use, then the kernel may forget it.
            FlushGpuCounts(now, onlyPid: (uint)entry.Pid);
            counters.Forget((uint)entry.Pid);
        }
        EmitProcess(EventType.Exit, entry, now, record.ExitCode);
        if (entry is not null)
        {
            Detection?.GpuIntruders.Forget(entry);
            dueAlerts.Clear();
            alertCounts.OnExit(entry, dueAlerts);
            foreach (AlertEvent repeated in dueAlerts)
                Emit(repeated);
        }
    }

    public void OnConnect(in ConnectRecord record)
    {
        NetworkEvent n = StartNetwork(EventType.Connect, record.Header, record.Cookie, record.Family, record.DestinationPort, record.DestinationAddress);
        n.Protocol = record.Protocol;
        n.SourcePort = record.SourcePort;
        ((ReadOnlySpan<byte>)record.SourceAddress).CopyTo(n.SourceAddress);
        n.Result = record.Result;
        n.DataLength = 0;
        Emit(n);
        if (!Exempt(n.Process, record.Family, record.DestinationAddress, record.DestinationPort)
            && Detection?.Weak.OnConnect(n.Process, record.DestinationAddress, record.Family, record.DestinationPort, n.TimeNs) is { } alert)
            Emit(alert);
    }

    public void OnPayload(in PayloadRecord record)
    {
        if (emittedPayloads.Contains(record.Cookie))
            return;
        if (!pendingPayloads.TryGetValue(record.Cookie, out PendingPayload? pending))
        {
            pending = payloadPool.Count > 0 ? payloadPool.Pop() : new PendingPayload();
            pending.Cookie = record.Cookie;
            pending.Length = 0;
            pendingPayloads[record.Cookie] = pending;
        }
        else
        {
            pendingByAge.Remove(pending.Age);
        }
        pendingByAge.AddLast(pending.Age);
        pending.Header = record.Header;
        pending.Family = record.Family;
        pending.DestinationPort = record.DestinationPort;
        ((ReadOnlySpan<byte>)record.DestinationAddress).CopyTo(pending.DestinationAddress);
        // Segments arrive in stream order (the kernel follows the sequence); each lands at its offset.
        int offset = Math.Min((int)record.Offset, PayloadRecord.Capacity);
        int length = Math.Min((int)record.Length, PayloadRecord.Capacity - offset);
        ((ReadOnlySpan<byte>)record.Data)[..length].CopyTo(pending.Data.AsSpan(offset));
        pending.Length = Math.Max(pending.Length, offset + length);
        pending.Segments = record.Segments;
        pending.LastNs = (long)record.Header.TimeNs;
        if ((record.Flags & PayloadRecord.Stratum) != 0 && Detection is { } detection
            && !Exempt(table.Owner(record.Header), record.Family, pending.DestinationAddress, record.DestinationPort))
        {
            AlertEvent alert = detection.Stratum.OnMatch(
                table.Owner(record.Header), pending.Data.AsSpan(0, pending.Length), record.Family, pending.DestinationAddress,
                record.DestinationPort, (record.Flags & PayloadRecord.Dropped) != 0, (long)record.Header.TimeNs);
            Respond(alert);
        }
        if ((record.Flags & PayloadRecord.Final) != 0)
            EmitPayload(pending);
    }

    public void OnDns(in DnsRecord record)
    {
        NetworkEvent n = StartNetwork(EventType.Dns, record.Header, record.Cookie, record.Family, record.DestinationPort, record.DestinationAddress);
        n.Protocol = 17;
        int length = Math.Min((int)record.Length, PayloadRecord.Capacity);
        if (!DnsNames.TryReadQuestion(((ReadOnlySpan<byte>)record.Message)[..length], n.Data, out int nameLength, out int queryType, out int id))
            return;
        n.DataLength = nameLength;
        n.DnsQueryType = queryType;
        n.DnsId = id;
        Emit(n);
        if (Detection?.Weak.OnDns(n.Process, System.Text.Encoding.ASCII.GetString(n.DataSpan), n.TimeNs) is { } alert)
            Emit(alert);
    }

    public void OnGpuOpen(in GpuOpenRecord record)
    {
        ProcessEntry? owner = table.Owner(record.Header);
        if (owner is not null)
        {
            owner.Gpu ??= new GpuActivity();
            owner.Gpu.Opened = true;
            owner.Gpu.Touched(record.Major, record.Minor, (GpuRole)record.Role);
        }
        EmitGpu(GpuEventKind.Open, owner, (long)record.Header.TimeNs, record.Major, record.Minor, (GpuRole)record.Role, record.Access, 0);
    }

    public void OnGpuIoctl(in GpuIoctlRecord record)
    {
        ProcessEntry? owner = table.Owner(record.Header);
        if (owner is not null)
        {
            owner.Gpu ??= new GpuActivity();
            owner.Gpu.Touched(record.Major, record.Minor, (GpuRole)record.Role);
        }
        EmitGpu(GpuEventKind.FirstIoctl, owner, (long)record.Header.TimeNs, record.Major, record.Minor, (GpuRole)record.Role, 0, record.Command);
    }

    /// <summary>Emits payloads that went quiet and forgets what has expired. Call between polls.</summary>
    public void Tick(long nowNs)
    {
        while (pendingByAge.First is { } oldest && nowNs - oldest.Value.LastNs >= PayloadQuietNs)
            EmitPayload(oldest.Value);
        while (emittedByAge.TryPeek(out (long DueNs, ulong Cookie) next) && next.DueNs <= nowNs)
        {
            emittedByAge.Dequeue();
            emittedPayloads.Remove(next.Cookie);
        }
        table.Expire(nowNs);
    }

    /// <summary>Judges the kernel's rounding-mode counts (sampled by the caller) and acts on what crosses the threshold.</summary>
    public void OnRoundingSample(IReadOnlyList<(int Pid, ulong Count)> counts, long nowNs)
    {
        if (Detection is not { } detection)
            return;
        foreach (AlertEvent alert in detection.Rounding.Sample(counts, nowNs, table))
        {
            if (alert.Process is { } p && detection.Allowed.Allows(p))
                continue;
            Respond(alert);
        }
    }

    /// <summary>
    /// One GPU sampling: a metric per device and per process on it, each
    /// process with its lineage and job; a process NVML puts on a GPU is judged
    /// like one whose driver calls the kernel counted.
    /// </summary>
    public void OnGpuSamples(IReadOnlyList<GpuDeviceSample> devices, long nowNs)
    {
        foreach (GpuDeviceSample device in devices)
        {
            gpuMetric.Device = device;
            gpuMetric.Sample = null;
            gpuMetric.Process = null;
            gpuMetric.TimeNs = nowNs;
            Emit(gpuMetric);
            if (Detection?.GpuIntruders.OnDevice(device, nowNs) is { } hidden)
                Respond(hidden);
            foreach (GpuProcessSample sample in device.Processes)
            {
                ProcessEntry? entry = table.Find(sample.Pid) ?? table.Load(sample.Pid);
                if (entry is not null)
                    (entry.GpuUsage ??= [])[device.Index] = sample;
                gpuMetric.Device = device;
                gpuMetric.Sample = sample;
                gpuMetric.Process = entry;
                gpuMetric.TimeNs = nowNs;
                Emit(gpuMetric);
                if (entry is not null && Detection is { } detection && !detection.Allowed.Allows(entry)
                    && detection.GpuIntruders.OnNvmlProcess(entry, device, sample, table, nowNs) is { } alert)
                    Respond(alert);
            }
        }
        gpuMetric.Process = null;
    }

    /// <summary>Reads the kernel's GPU counters and emits activity for every process whose counts moved.</summary>
    public void FlushGpuCounts(long nowNs, uint? onlyPid = null)
    {
        if (GpuCounters is not { } counters)
            return;
        counts.Clear();
        gpuChanged.Clear();
        counters.ReadKinds(counts);
        foreach ((uint pid, uint slot, ulong count) in counts)
        {
            if ((onlyPid is uint only && pid != only) || slot >= GpuActivity.KindCount || table.Find((int)pid) is not { } entry)
                continue;
            entry.Gpu ??= new GpuActivity();
            if (entry.Gpu.Counts[slot] != count)
            {
                entry.Gpu.Counts[slot] = count;
                gpuChanged.Add(entry);
            }
        }
        counts.Clear();
        counters.ReadClasses(counts);
        foreach ((uint pid, uint cls, ulong count) in counts)
        {
            if ((onlyPid is uint only && pid != only) || table.Find((int)pid) is not { Gpu: { } gpu } entry)
                continue;
            if (!gpu.Classes.TryGetValue(cls, out ulong old) || old != count)
            {
                gpu.Classes[cls] = count;
                gpuChanged.Add(entry);
            }
        }
        foreach (ProcessEntry entry in gpuChanged)
        {
            GpuActivity gpu = entry.Gpu!;
            gpuEvent.Activity = gpu;
            EmitGpu(GpuEventKind.Activity, entry, nowNs, gpu.Major, gpu.Minor, gpu.Role, 0, 0);
            gpuEvent.Activity = null;
            if (Detection is { } detection && !detection.Allowed.Allows(entry)
                && detection.GpuIntruders.OnGpuWork(entry, gpu, table, nowNs) is { } alert)
                Respond(alert);
        }
    }

    /// <summary>No network finding about an allowed process, or a connection to an allowed destination.</summary>
    private bool Exempt(ProcessEntry? process, ushort family, ReadOnlySpan<byte> address, ushort port) =>
        Detection is not { } detection
        || (process is not null && detection.Allowed.Allows(process))
        || detection.Destinations.Allows(family, address, port);

    /// <summary>Acts on an alert as its rule asks, then emits the alert and each action taken.</summary>
    private void Respond(AlertEvent alert)
    {
        IReadOnlyList<ActionEvent> actions = Responder?.Apply(alert) ?? [];
        if (alertCounts.Admit(alert))
            Emit(alert);
        foreach (ActionEvent action in actions)
            Emit(action);
    }

    public void Emit(SensorEvent e)
    {
        if (e is ActionEvent action)
            ActionLog?.Append(action);
        if (e.Process is { } process)
        {
            table.EnsureDetails(process);
            if (process.Parent is { } parent)
                table.EnsureDetails(parent);
        }
        if (!filter.Matches(e))
            return;
        e.Sequence = ++sequence;
        EventsEmitted++;
        EmittedByType[(int)e.Type]++;
        sink.Write(e);
    }

    private void EmitProcess(EventType type, ProcessEntry? entry, long timeNs, uint exitStatus)
    {
        processEvent.Reset(type);
        processEvent.Process = entry;
        processEvent.TimeNs = timeNs;
        processEvent.ExitStatus = exitStatus;
        Emit(processEvent);
    }

    private void EmitGpu(GpuEventKind kind, ProcessEntry? owner, long timeNs, uint major, uint minor, GpuRole role, uint access, uint command)
    {
        gpuEvent.Kind = kind;
        gpuEvent.Process = owner;
        gpuEvent.TimeNs = timeNs;
        gpuEvent.Major = major;
        gpuEvent.Minor = minor;
        gpuEvent.Role = role;
        gpuEvent.Access = access;
        gpuEvent.Command = command;
        Emit(gpuEvent);
    }

    private NetworkEvent StartNetwork(EventType type, in RecordHeader header, ulong cookie, ushort family, ushort port, ReadOnlySpan<byte> address)
    {
        NetworkEvent n = networkEvent;
        n.Reset(type);
        n.Process = table.Owner(header);
        n.TimeNs = (long)header.TimeNs;
        n.Cookie = cookie;
        n.Family = family;
        n.DestinationPort = port;
        address.CopyTo(n.DestinationAddress);
        n.SourcePort = 0;
        n.Segments = 0;
        return n;
    }

    private void EmitPayload(PendingPayload pending)
    {
        ulong cookie = pending.Cookie;
        pendingPayloads.Remove(cookie);
        pendingByAge.Remove(pending.Age);
        emittedPayloads.Add(cookie);
        emittedByAge.Enqueue((pending.LastNs + EmittedCookieRetentionNs, cookie));
        NetworkEvent n = StartNetwork(EventType.Payload, pending.Header, cookie, pending.Family, pending.DestinationPort, pending.DestinationAddress);
        n.Protocol = 6;
        pending.Data.AsSpan(0, pending.Length).CopyTo(n.Data);
        n.DataLength = pending.Length;
        n.Segments = pending.Segments;
        Emit(n);
        if (!Exempt(n.Process, (ushort)n.Family, n.DestinationAddress, (ushort)n.DestinationPort)
            && Detection?.Stratum.OnFirstBytes(n.Process, n.DataSpan, n.DestinationPort, n.TimeNs) is { } alert)
        {
            Respond(alert);
        }
        payloadPool.Push(pending);
    }

    private sealed class PendingPayload
    {
        public PendingPayload() => Age = new LinkedListNode<PendingPayload>(this);

        /// <summary>Its place in the age list: moved, never reallocated.</summary>
        public readonly LinkedListNode<PendingPayload> Age;
        public ulong Cookie;
        public RecordHeader Header;
        public ushort Family;
        public ushort DestinationPort;
        public readonly byte[] DestinationAddress = new byte[16];
        public readonly byte[] Data = new byte[PayloadRecord.Capacity];
        public int Length;
        public int Segments;
        public long LastNs;
    }
}
