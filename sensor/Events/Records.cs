using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Events;

// Mirrors bpf/guard.h, field for field. RecordLayoutTests compares every size
// and offset here with the BTF of the built object.

public enum RecordKind : ushort
{
    Exec = 1,
    Fork = 2,
    Exit = 3,
    Connect = 4,
    Payload = 5,
    Dns = 6,
    GpuOpen = 7,
    GpuIoctl = 8,
    Count = 9,
}

public enum ConnectResult : uint
{
    Established = 1,
    Failed = 2,
    Udp = 3,
}

[StructLayout(LayoutKind.Sequential)]
public struct RecordHeader
{
    public const ushort AbiVersion = 1;

    public RecordKind Kind;
    public ushort Version;
    public uint Pid;
    public ulong TimeNs;
    public ulong StartTimeNs;
}

[InlineArray(16)]
public struct Bytes16
{
    private byte first;
}

[InlineArray(256)]
public struct Bytes256
{
    private byte first;
}

[InlineArray(1024)]
public struct Bytes1024
{
    private byte first;
}

[StructLayout(LayoutKind.Sequential)]
public struct ExecRecord
{
    public const uint ArgsTruncated = 1;
    public const uint KnownMiner = 2;
    public const uint Killed = 4;
    public const uint InJob = 8;
    public const uint Unlinked = 16;
    public const uint Memfd = 32;
    public const uint SharedDirectory = 64;

    public RecordHeader Header;
    public uint Ppid;
    public uint Uid;
    public uint Gid;
    public ushort PathLength;
    public ushort ArgsLength;
    public ulong ParentStartTimeNs;
    public ulong CgroupId;
    public uint Flags;
    public uint JobRootPid;
    public Bytes16 Comm;
    public Bytes256 Path;
    public Bytes1024 Args;
}

[StructLayout(LayoutKind.Sequential)]
public struct ForkRecord
{
    public RecordHeader Header;
    public uint ParentPid;
    public uint Uid;
    public ulong ParentStartTimeNs;
    public ulong CgroupId;
    public Bytes16 Comm;
}

[StructLayout(LayoutKind.Sequential)]
public struct ExitRecord
{
    public RecordHeader Header;
    public uint ExitCode;
    public uint Pad;
}

[StructLayout(LayoutKind.Sequential)]
public struct ConnectRecord
{
    public RecordHeader Header;
    public ulong Cookie;
    public ushort Family;
    public ushort Protocol;
    public ushort DestinationPort;
    public ushort SourcePort;
    public ConnectResult Result;
    public uint Pad;
    public Bytes16 DestinationAddress;
    public Bytes16 SourceAddress;
}

[StructLayout(LayoutKind.Sequential)]
public struct PayloadRecord
{
    public const byte Final = 1;
    public const byte Stratum = 2;
    public const byte Dropped = 4;
    public const int Capacity = 256;

    public RecordHeader Header;
    public ulong Cookie;
    public ushort Family;
    public ushort DestinationPort;
    public ushort Offset;
    public ushort Length;
    public byte Segments;
    public byte Flags;
    public ushort Pad;
    public Bytes16 DestinationAddress;
    public Bytes256 Data;
}

[StructLayout(LayoutKind.Sequential)]
public struct DnsRecord
{
    public RecordHeader Header;
    public ulong Cookie;
    public ushort Family;
    public ushort DestinationPort;
    public ushort Length;
    public ushort Pad;
    public Bytes16 DestinationAddress;
    public Bytes256 Message;
}

[StructLayout(LayoutKind.Sequential)]
public struct GpuOpenRecord
{
    public RecordHeader Header;
    public uint Major;
    public uint Minor;
    public uint Access;
    public uint Role;
}

[StructLayout(LayoutKind.Sequential)]
public struct GpuIoctlRecord
{
    public RecordHeader Header;
    public uint Major;
    public uint Minor;
    public uint Command;
    public uint Role;
}

[InlineArray(GuardMethod.Capacity)]
public struct Bytes32
{
    private byte first;
}

/// <summary>Key of stratum_methods: a JSON-RPC method, NUL-padded.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardMethod
{
    public const int Capacity = 32;
    public const uint Alert = 1;
    public const uint Drop = 2;

    public Bytes32 Name;
}

/// <summary>Key of the name maps: a comm, NUL-padded.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardName
{
    public const uint Anywhere = 1;
    public const uint InJob = 2;
    public const uint Kill = 4;

    public Bytes16 Name;
}

[StructLayout(LayoutKind.Sequential)]
public struct GuardJobMember
{
    public uint RootPid;
    public uint Pad;
    public ulong RootStartTimeNs;
}

[StructLayout(LayoutKind.Sequential)]
public struct GpuCountKey
{
    public uint Pid;
    public uint Slot;
}

[StructLayout(LayoutKind.Sequential)]
public struct GuardGpuDevice
{
    public uint Major;
    public int Minor;
    public uint Role;
    public uint Pad;
}

[InlineArray(GuardConfig.MaxGpuDevices)]
public struct GuardGpuDevices
{
    private GuardGpuDevice first;
}

[StructLayout(LayoutKind.Sequential)]
public struct GuardConfig
{
    public const int MaxGpuDevices = 8;

    public uint AbiVersion;
    public uint SelfPid;
    public uint GpuDeviceCount;
    public uint WakeupBytes;
    public GuardGpuDevices GpuDevices;
}

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

[InlineArray(GuardQuarantine.JobCapacity)]
public struct Bytes64
{
    private byte first;
}

[InlineArray(GuardQuarantine.ReasonCapacity)]
public struct Bytes160
{
    private byte first;
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

/// <summary>Key of quarantine_devices: a GPU device file the held may not open.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardDeviceKey
{
    public uint Major;
    public int Minor;
}

[InlineArray(2)]
public struct Bytes2
{
    private byte first;
}

/// <summary>Key of allowed_destinations (an LPM trie): port in network order, then a v4-mapped IPv6 address.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardDestinationKey
{
    public uint PrefixLength;
    public Bytes2 Port;
    public Bytes16 Address;
    public Bytes2 Pad;
}

/// <summary>Key of allowed_files: an executable's inode and its device, encoded as the kernel keeps dev_t.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardFileKey
{
    public ulong Inode;
    public uint Device;
    public uint Pad;
}
