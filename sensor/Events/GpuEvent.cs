using Guard.Sensor.Abi;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Events;

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

    public GpuRole Role { get; internal set; }

    public uint Access { get; internal set; }

    public uint Command { get; internal set; }

    /// <summary>For activity: the counts as they stand (ProcessEntry.GpuActivity holds them).</summary>
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
