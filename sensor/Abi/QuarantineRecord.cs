using System.Runtime.InteropServices;


namespace Guard.Sensor.Abi;

/// <summary>How a quarantine holds its job (enum guard_quarantine_mode).</summary>
public enum QuarantineMode : uint
{
    /// <summary>The job's own cgroup: frozen, deny programs attached to it.</summary>
    Cgroup = 1,

    /// <summary>A process tree: stopped, members kept in the kernel from fork.</summary>
    Tree = 2,
}

/// <summary>What happens when a quarantine's timeout passes (enum guard_quarantine_expiry).</summary>
public enum QuarantineExpiry : uint
{
    None = 0,
    Kill = 1,
    Release = 2,
}

/// <summary>A value of the pinned quarantines map: one held job.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardQuarantine
{
    public const int JobCapacity = 64;
    public const int OrderedByCapacity = 32;
    public const int ReasonCapacity = 160;

    public ulong SinceNs;
    public ulong DeadlineNs;
    public ulong CgroupId;
    public ulong RootStartTicks;
    public uint RootPid;
    public uint OrderedByUid;
    public QuarantineMode Mode;
    public QuarantineExpiry Expiry;
    public Bytes64 Job;
    public Bytes32 OrderedBy;
    public Bytes160 Reason;
}
