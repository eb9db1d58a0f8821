using Guard.Sensor.Gpu;

namespace Guard.Sensor.Bpf;

/// <summary>What the sensor decides before load: sizes and the read-only configuration.</summary>
public sealed record KernelOptions
{
    public const int DefaultRingBufferBytes = 16 << 20;

    /// <summary>Bytes of the ring buffer; a power of two, at least a page.</summary>
    public int RingBufferBytes { get; init; } = DefaultRingBufferBytes;

    /// <summary>Device files whose opens and ioctls count as GPU use. Empty: no ioctl program.</summary>
    public IReadOnlyList<GpuDevice> GpuDevices { get; init; } = [];

    /// <summary>Where the cgroup programs attach; found from /proc/self/mounts when null.</summary>
    public string? CgroupRoot { get; init; }

    /// <summary>What the exec program judges: miner names, job roots, allowed users.</summary>
    public ExecRules ExecRules { get; init; } = ExecRules.None;
}

/// <summary>
/// The exec-time rules the kernel applies itself. Names are comms: the first
/// 15 bytes of the executable's name, as the kernel keeps it.
/// </summary>
public sealed record ExecRules(
    IReadOnlyList<string> MinersAnywhere, IReadOnlyList<string> MinersInJobs, bool KillAnywhere, bool KillInJobs,
    IReadOnlyList<string> JobRoots, IReadOnlyList<uint> AllowedUids)
{
    public static readonly ExecRules None = new([], [], false, false, [], []);
}
