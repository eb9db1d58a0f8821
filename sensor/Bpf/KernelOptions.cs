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

    /// <summary>What the kernel judges itself: miner names, job roots, allowed users, Stratum methods.</summary>
    public InKernelRules InKernelRules { get; init; } = InKernelRules.None;
}

/// <summary>
/// The rules the kernel applies itself, at exec and at egress. Names are
/// comms: the first 15 bytes of the executable's name, as the kernel keeps it.
/// </summary>
public sealed record InKernelRules(
    IReadOnlyList<string> MinersAnywhere, IReadOnlyList<string> MinersInJobs, bool KillAnywhere, bool KillInJobs,
    IReadOnlyList<string> JobRoots, IReadOnlyList<uint> AllowedUids,
    IReadOnlyList<string> StratumMethods, bool DropStratum)
{
    public static readonly InKernelRules None = new([], [], false, false, [], [], [], false);
}
