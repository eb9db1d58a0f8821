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

    /// <summary>Whether the kernel acts on these rules (kills at exec or drops Stratum), rather than only recording.</summary>
    public bool Enforce => KillAnywhere || KillInJobs || DropStratum;

    /// <summary>Executables (device, inode) the kernel never kills at exec (the policy's allow list).</summary>
    public IReadOnlyList<(uint Device, ulong Inode)> AllowedFiles { get; init; } = [];

    /// <summary>Destinations a Stratum match is never dropped for (the policy's allow list).</summary>
    public IReadOnlyList<DestinationRule> AllowedDestinations { get; init; } = [];

    /// <summary>Cgroup names the policy makes jobs ([jobs] units: "trainer.service"), each under <see cref="Abi.GuardCgroupName.Capacity"/> - 1 bytes.</summary>
    public IReadOnlyList<string> JobUnits { get; init; } = [];
}

/// <summary>
/// An allowed destination: a network as v4-mapped IPv6 with its prefix in
/// bits (96 + the IPv4 prefix for IPv4), and one port or, when 0, any.
/// </summary>
public readonly record struct DestinationRule(byte[] Network, int PrefixBits, ushort Port)
{
    public bool Matches(ReadOnlySpan<byte> mapped, ushort port)
    {
        if (Port != 0 && Port != port)
            return false;
        int whole = PrefixBits / 8, rest = PrefixBits % 8;
        if (!mapped[..whole].SequenceEqual(Network.AsSpan(0, whole)))
            return false;
        int mask = (0xFF << (8 - rest)) & 0xFF;
        return rest == 0 || (mapped[whole] & mask) == (Network[whole] & mask);
    }
}
