using Guard.Sensor.Processes;

namespace Guard.Sensor.Events;

/// <summary>The --type names: what a sysadmin filters on.</summary>
public enum EventType
{
    Exec,
    Fork,
    Exit,
    Connect,
    Payload,
    Dns,
    Gpu,
    Heartbeat,
    Action,
    Alert,
}

/// <summary>
/// A decoded, enriched event. The pipeline reuses one instance per type, so a
/// sink must copy what it keeps beyond its Write call.
/// </summary>
public abstract class SensorEvent
{
    public abstract EventType Type { get; }

    /// <summary>Per-run sequence number (event.sequence).</summary>
    public long Sequence { get; internal set; }

    /// <summary>When it happened, CLOCK_BOOTTIME ns.</summary>
    public long TimeNs { get; internal set; }

    /// <summary>The process it is about; null when the kernel could not name one.</summary>
    public ProcessEntry? Process { get; internal set; }
}

public sealed class ProcessEvent : SensorEvent
{
    private EventType type;

    public override EventType Type => type;

    internal void Reset(EventType eventType) => type = eventType;

    /// <summary>For exit: the wait status (signal in bits 0-6, status in 8-15, core dump bit 7).</summary>
    public uint ExitStatus { get; internal set; }

    public int ExitCode => (int)((ExitStatus >> 8) & 0xFF);

    public int ExitSignal => (int)(ExitStatus & 0x7F);

    public bool CoreDumped => (ExitStatus & 0x80) != 0;
}

/// <summary>Connect outcomes, first payload bytes and DNS queries.</summary>
public sealed class NetworkEvent : SensorEvent
{
    private EventType type;

    public override EventType Type => type;

    internal void Reset(EventType eventType) => type = eventType;

    public ulong Cookie { get; internal set; }

    /// <summary>2 (AF_INET) or 10 (AF_INET6).</summary>
    public int Family { get; internal set; }

    public int Protocol { get; internal set; }

    public byte[] DestinationAddress { get; } = new byte[16];

    public int DestinationPort { get; internal set; }

    public byte[] SourceAddress { get; } = new byte[16];

    public int SourcePort { get; internal set; }

    public ConnectResult Result { get; internal set; }

    /// <summary>Payload bytes, or the DNS query name, valid up to <see cref="DataLength"/>.</summary>
    public byte[] Data { get; } = new byte[PayloadRecord.Capacity];

    public int DataLength { get; internal set; }

    public int Segments { get; internal set; }

    public int DnsQueryType { get; internal set; }

    public int DnsId { get; internal set; }

    public ReadOnlySpan<byte> DataSpan => Data.AsSpan(0, DataLength);
}

public enum GpuEventKind
{
    /// <summary>First open of a GPU device file.</summary>
    Open,

    /// <summary>First driver ioctl of a process.</summary>
    FirstIoctl,

    /// <summary>Periodic (and final, at exit) ioctl counts.</summary>
    Activity,
}

public sealed class GpuEvent : SensorEvent
{
    public override EventType Type => EventType.Gpu;

    public GpuEventKind Kind { get; internal set; }

    public uint Major { get; internal set; }

    public uint Minor { get; internal set; }

    public Gpu.GpuRole Role { get; internal set; }

    public uint Access { get; internal set; }

    public uint Command { get; internal set; }

    /// <summary>For activity: the counts as they stand (process.Gpu holds them).</summary>
    public GpuActivity? Activity { get; internal set; }
}

/// <summary>A GPU sample (event.kind metric): a device, or one process on it with its lineage.</summary>
public sealed class GpuMetricEvent : SensorEvent
{
    public override EventType Type => EventType.Gpu;

    public Gpu.GpuDeviceSample Device { get; internal set; } = null!;

    /// <summary>Null for the device's own sample.</summary>
    public Gpu.GpuProcessSample? Sample { get; internal set; }
}

/// <summary>The periodic health metric: a drop is never silent.</summary>
public sealed class HeartbeatEvent : SensorEvent
{
    public override EventType Type => EventType.Heartbeat;

    public long Events { get; internal set; }

    public ulong[] DropsByKind { get; internal set; } = [];

    public ulong Drops => DropsByKind.Aggregate(0UL, (a, b) => a + b);

    public long DecodeFailures { get; internal set; }

    public int Processes { get; internal set; }

    public double UptimeSeconds { get; internal set; }
}

/// <summary>Something Guard did (or refused to do) to a process, and who ordered it.</summary>
public sealed class ActionEvent : SensorEvent
{
    public override EventType Type => EventType.Action;

    /// <summary>kill, kill-tree, kill-job.</summary>
    public string Action { get; init; } = "";

    public bool Succeeded { get; init; }

    /// <summary>What happened, or why it was refused.</summary>
    public string Message { get; init; } = "";

    /// <summary>"cli" or a rule name.</summary>
    public string OrderedBy { get; init; } = "cli";

    /// <summary>The person's uid (under sudo, the one who ran sudo).</summary>
    public uint OrderedByUid { get; init; }

    public IReadOnlyList<int> Pids { get; init; } = [];

    public string? CgroupPath { get; init; }
}

/// <summary>A finding: a rule fired on a process, with the evidence and what was done.</summary>
public sealed class AlertEvent : SensorEvent
{
    public override EventType Type => EventType.Alert;

    /// <summary>The rule (a detector's name).</summary>
    public string Rule { get; init; } = "";

    public string Description { get; init; } = "";

    /// <summary>What was done, in words ("killed by the kernel at exec"); empty when only alerting.</summary>
    public IReadOnlyList<string> Response { get; set; } = [];

    /// <summary>What the policy asks the response to do; Off when it is already done or only an alert.</summary>
    public Detection.RuleAction RequestedAction { get; init; } = Detection.RuleAction.Alert;

    /// <summary>The kernel killed the process already (at exec): what is left to do is the job's part.</summary>
    public bool KilledInKernel { get; init; }

    /// <summary>The training job's root above the process, when it is inside one.</summary>
    public ProcessEntry? JobRoot { get; init; }

    /// <summary>Evidence as name/value pairs, captured before any kill.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Evidence { get; set; } = [];

    /// <summary>How often this rule has fired on this process so far (this alert included).</summary>
    public long Count { get; set; } = 1;
}
