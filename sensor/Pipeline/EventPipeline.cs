using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// The user-space flow for each record, decoded by the caller: the process
/// table is updated, the event built and emitted, then judged. One thread, no
/// locks; events are reused instances, so a record costs no allocation beyond
/// what the table must keep. Payload reassembly, GPU accounting and the
/// findings-and-response path are the collaborators'.
/// </summary>
public sealed class EventPipeline : IRecordHandler
{
    private readonly ProcessTable table;
    private readonly EventEmitter emitter;
    private readonly PayloadAssembly payloads;
    private readonly GpuAccounting gpu;
    private readonly Judge? judge;
    private readonly ProcessEvent processEvent = new();
    private readonly NetworkEvent networkEvent = new();
    private readonly GpuEvent gpuEvent = new();
    private readonly GpuMetricEvent gpuMetric = new();
    private readonly Queue<ProcessEntry> existing = new();
    private readonly ExecArgsTails argsTails = new();

    /// <param name="table">The process table every record updates or reads.</param>
    /// <param name="emitter">Where events go.</param>
    /// <param name="payloads">Puts first bytes together.</param>
    /// <param name="gpu">Keeps each process's GPU use.</param>
    /// <param name="judge">The policy's findings and responses; null runs the sensor without findings.</param>
    public EventPipeline(ProcessTable table, EventEmitter emitter, PayloadAssembly payloads, GpuAccounting gpu, Judge? judge)
    {
        this.table = table;
        this.emitter = emitter;
        this.payloads = payloads;
        this.gpu = gpu;
        this.judge = judge;
    }

    /// <summary>The policy's [[confine]] sections in the kernel; null when it has none.</summary>
    public Response.Confinement? Confinement { get; set; }

    private readonly List<ProcessDenialEvent> denials = [];

    public void OnExec(in ExecRecord record)
    {
        ProcessEntry entry = table.OnExec(record);
        if ((record.Flags & ExecRecord.Killed) != 0)
            emitter.Counters?.Denials.Add("exec");
        // argv past the record's 1024 bytes came just before it: the exec is judged on all of it.
        if (argsTails.Take(record, out bool whole) is { } args)
        {
            int end = args.Length;
            while (end > 0 && args[end - 1] == 0)
                end--;
            entry.Args = end == args.Length ? args : args[..end];
            entry.ArgsTruncated = !whole;
        }
        EmitProcess(EventType.Exec, entry, (long)record.Header.TimeNs, 0);
        // A job first seen at this exec is confined from now on, if a section selects it; then judged, its section known.
        Confinement?.OnProcess(entry);
        judge?.OnExec(entry, record);
    }

    /// <summary>
    /// Queues every process that was running when the sensor started (found in
    /// /proc, not a kernel thread, not this sensor) to be judged by the rules
    /// an exec meets, a batch at a time by <see cref="JudgeExisting"/>, so that
    /// a host of ten thousand processes does not hold the first events back.
    /// </summary>
    public void QueueExisting()
    {
        if (judge is null)
            return;
        int self = Environment.ProcessId;
        foreach (ProcessEntry entry in table.Entries.Where(e => e.Origin == ProcessOrigin.Procfs && !e.IsKernelThread && e.Pid != self))
            existing.Enqueue(entry);
    }

    /// <summary>Judges up to <paramref name="count"/> of the queued existing processes (their details read now) at <paramref name="nowNs"/>; returns how many wait still.</summary>
    public int JudgeExisting(long nowNs, int count = int.MaxValue)
    {
        for (; count > 0 && existing.TryDequeue(out ProcessEntry? entry); count--)
        {
            if (entry.Exited)
                continue;
            table.EnsureDetails(entry);
            judge!.OnExisting(entry, nowNs);
        }
        return existing.Count;
    }

    /// <summary>
    /// Judges now, by the rules an exec meets, a process whose exec or fork
    /// record the full ring lost, its details read from /proc
    /// (<see cref="ProcessTable.Relearn"/>) at <paramref name="nowNs"/>.
    /// </summary>
    public void JudgeLate(ProcessEntry entry, long nowNs) => judge?.OnExisting(entry, nowNs, late: true);

    /// <summary>argv past an exec record's 1024 bytes: kept for that process's exec record, which follows.</summary>
    public void OnExecArgs(in ExecArgsRecord record) => argsTails.Add(record);

    public void OnFork(in ForkRecord record)
    {
        ProcessEntry entry = table.OnFork(record);
        EmitProcess(EventType.Fork, entry, (long)record.Header.TimeNs, 0);
    }

    public void OnExit(in ExitRecord record)
    {
        long now = (long)record.Header.TimeNs;
        ProcessEntry? entry = table.OnExit(record, now);
        if (gpu.HasFinalCounts(entry))
        {
            // The last word on its GPU use, then the kernel may forget it.
            FlushGpuCounts(now, onlyPid: (uint)entry!.Pid);
            gpu.Forget(entry);
        }
        EmitProcess(EventType.Exit, entry, now, record.ExitCode);
        if (entry is not null)
            judge?.OnExit(entry);
    }

    public void OnConnect(in ConnectRecord record)
    {
        NetworkEvent n = StartNetwork(EventType.Connect, record.Header, record.Cookie, record.Family, record.DestinationPort, record.DestinationAddress);
        n.Protocol = record.Protocol;
        n.SourcePort = record.SourcePort;
        ((ReadOnlySpan<byte>)record.SourceAddress).CopyTo(n.SourceAddress);
        n.Result = record.Result;
        n.DataLength = 0;
        emitter.Emit(n);
        judge?.OnConnect(n);
    }

    public void OnPayload(in PayloadRecord record)
    {
        judge?.OnSegment(record);
        if (payloads.Add(record) is not { } payload)
            return;
        if ((record.Flags & (PayloadRecord.Stratum | PayloadRecord.Dropped)) == (PayloadRecord.Stratum | PayloadRecord.Dropped))
            emitter.Counters?.Denials.Add("stratum");
        // A segment that completed a method is followed by the stream record of its verdict, which
        // is judged with these bytes (a relay's sender is told by them) and then lets them out.
        if ((record.Flags & (PayloadRecord.Final | PayloadRecord.Stratum)) == PayloadRecord.Final)
            EmitPayload(payload);
        // A TLS stream's head is reported on to 8 KiB; its ClientHello is judged once it is whole, not when the head goes quiet.
        else if ((record.Flags & PayloadRecord.Final) == 0 && TlsClientHello.IsWhole(payload.Bytes))
            EmitPayload(payload);
    }

    /// <summary>
    /// What the kernel decided about a stream: judged with the connection's
    /// first bytes while they are still gathered, which go out after it once a
    /// verdict ends them.
    /// </summary>
    public void OnStream(in StreamRecord record)
    {
        AssembledPayload? head = payloads.Pending(record.Cookie);
        if (head is not null && record.Verdict != 0)
            head.KernelDecided = true;
        judge?.OnStream(table.Owner(record.Header), record, head);
        if (head is not null && record.Verdict != 0)
            EmitPayload(head);
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
        emitter.Emit(n);
        judge?.OnDns(n);
    }

    public void OnGpuOpen(in GpuOpenRecord record)
    {
        ProcessEntry? owner = table.Owner(record.Header);
        GpuAccounting.Touched(owner, record.Major, record.Minor, (GpuRole)record.Role, opened: true);
        EmitGpu(GpuEventKind.Open, owner, (long)record.Header.TimeNs, record.Major, record.Minor, (GpuRole)record.Role, record.Access, 0);
    }

    public void OnGpuIoctl(in GpuIoctlRecord record)
    {
        ProcessEntry? owner = table.Owner(record.Header);
        GpuAccounting.Touched(owner, record.Major, record.Minor, (GpuRole)record.Role, opened: false);
        EmitGpu(GpuEventKind.FirstIoctl, owner, (long)record.Header.TimeNs, record.Major, record.Minor, (GpuRole)record.Role, 0, record.Command);
    }

    /// <summary>Emits the kernel's denied execs and GPU opens of confined jobs since the last call. Call between polls, after the ring's records.</summary>
    public void EmitConfineDenials()
    {
        if (Confinement is null)
            return;
        denials.Clear();
        Confinement.DrainDenials(table, denials);
        foreach (ProcessDenialEvent d in denials)
            emitter.Emit(d);
    }

    /// <summary>Emits payloads that went quiet and forgets what has expired. Call between polls (CLOCK_BOOTTIME ns).</summary>
    public void Tick(long nowNs)
    {
        judge?.CollectRelays();
        while (payloads.NextQuiet(nowNs) is { } quiet)
            EmitPayload(quiet);
        payloads.ForgetEmitted(nowNs);
        table.Expire(nowNs);
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
            EmitGpuMetric(device, null, null, nowNs);
            judge?.OnGpuDevice(device, nowNs);
            foreach (GpuProcessSample sample in device.Processes)
            {
                ProcessEntry? entry = gpu.Sampled(device, sample);
                EmitGpuMetric(device, sample, entry, nowNs);
                if (entry is not null)
                    judge?.OnNvmlProcess(entry, device, sample, table, nowNs);
            }
        }
        gpuMetric.Process = null;
    }

    /// <summary>Reads the kernel's GPU counters and emits activity for every process whose counts moved.</summary>
    public void FlushGpuCounts(long nowNs, uint? onlyPid = null)
    {
        foreach (ProcessEntry entry in gpu.Flush(onlyPid))
        {
            GpuActivity activity = entry.GpuActivity!;
            gpuEvent.Activity = activity;
            EmitGpu(GpuEventKind.Activity, entry, nowNs, activity.Major, activity.Minor, activity.Role, 0, 0);
            gpuEvent.Activity = null;
            judge?.OnGpuWork(entry, activity, table, nowNs);
        }
    }

    private void EmitProcess(EventType type, ProcessEntry? entry, long timeNs, uint exitStatus)
    {
        processEvent.Reset(type);
        processEvent.Process = entry;
        processEvent.TimeNs = timeNs;
        processEvent.ExitStatus = exitStatus;
        emitter.Emit(processEvent);
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
        emitter.Emit(gpuEvent);
    }

    private void EmitGpuMetric(GpuDeviceSample device, GpuProcessSample? sample, ProcessEntry? entry, long nowNs)
    {
        gpuMetric.Device = device;
        gpuMetric.Sample = sample;
        gpuMetric.Process = entry;
        gpuMetric.TimeNs = nowNs;
        emitter.Emit(gpuMetric);
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

    private void EmitPayload(AssembledPayload payload)
    {
        NetworkEvent n = StartNetwork(EventType.Payload, payload.Header, payload.Cookie, payload.Family, payload.DestinationPort, payload.DestinationAddress);
        n.Protocol = 6;
        // The event carries the first 256 bytes; the judge reads all there are (a TLS stream's whole ClientHello).
        int shown = Math.Min(payload.Length, n.Data.Length);
        payload.Bytes[..shown].CopyTo(n.Data);
        n.DataLength = shown;
        n.Segments = payload.Segments;
        emitter.Emit(n);
        judge?.OnFirstBytes(n, payload.Bytes, payload.KernelDecided);
        payloads.Close(payload); // judged: the assembly may reuse it
    }
}
