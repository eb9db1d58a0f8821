using System.Runtime.InteropServices;

namespace Guard.Sensor.Abi;

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
    public const ushort AbiVersion = 2;

    public RecordKind Kind;
    public ushort Version;
    public uint Pid;
    public ulong TimeNs;
    public ulong StartTimeNs;
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

    /// <summary>The miner name the kernel matched (its comm, or the executed file's own name) is acted on anywhere, not in jobs only.</summary>
    public const uint MinerAnywhere = 128;

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

    /// <summary>The inode of the file exec opened.</summary>
    public ulong FileInode;

    /// <summary>Its device as the kernel encodes dev_t: major &lt;&lt; 20 | minor.</summary>
    public uint FileDevice;
    public uint FilePad;
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
