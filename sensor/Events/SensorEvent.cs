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

    /// <summary>A [[confine]] section's denial (or, in audit, what it would deny), counted per job, destination and minute.</summary>
    Confine,
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
