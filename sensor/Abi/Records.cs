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
    Stream = 9,
    ExecArgs = 10,
    Count = 11,
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
    /// <summary>GUARD_ABI_VERSION in bpf/guard.h: 3 since the stream record (<see cref="RecordKind.Stream"/>).</summary>
    public const ushort AbiVersion = 3;

    public RecordKind Kind;
    public ushort Version;
    public uint Pid;
    public ulong TimeNs;
    public ulong StartTimeNs;
}

[StructLayout(LayoutKind.Sequential)]
public struct ExecRecord
{
    /// <summary>GUARD_ARGS_LEN: the bytes of argv the exec record itself holds.</summary>
    public const int ArgsCapacity = 1024;

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

    /// <summary>argv's whole length in bytes; past <see cref="ArgsLength"/>, up to <see cref="ExecArgsRecord.MaxArgs"/>, it came in <see cref="ExecArgsRecord"/>s first.</summary>
    public uint ArgsTotal;
    public Bytes16 Comm;
    public Bytes256 Path;
    public Bytes1024 Args;
}

/// <summary>
/// argv past the exec record's 1024 bytes (struct guard_exec_args), read by
/// the kernel at exec before the program's first instruction and submitted
/// before the process's exec record, in order of <see cref="Offset"/>.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct ExecArgsRecord
{
    /// <summary>GUARD_ARGS_CHUNK: bytes of argv a record carries at most.</summary>
    public const int ChunkCapacity = 4096;

    /// <summary>GUARD_ARGS_MAX: how much of argv the kernel reads at exec, the exec record's part included.</summary>
    public const int MaxArgs = 65536;

    public RecordHeader Header;

    /// <summary>Where <see cref="Data"/> starts in argv: 1024 + n * <see cref="ChunkCapacity"/>.</summary>
    public uint Offset;

    /// <summary>Bytes in <see cref="Data"/>.</summary>
    public uint Length;
    public Bytes4096 Data;
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

    /// <summary>GUARD_TLS_HEAD_LEN: how far a stream that opens with a TLS handshake record is reported, in records of <see cref="Capacity"/>.</summary>
    public const int TlsHeadCapacity = 8192;

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

/// <summary>The proxy handshake a stream opened with (enum guard_proxy), the latest when proxies are chained.</summary>
public enum StreamProxy : byte
{
    None = 0,
    Socks4 = 1,
    Socks4a = 2,
    Socks5 = 3,
    HttpConnect = 4,

    /// <summary>An HTTP request for an absolute-form target (http://host:port/...), as a forward proxy is asked; its authority is the destination.</summary>
    HttpForward = 5,
}

/// <summary>How the destination asked of a proxy is written (enum guard_proxy_address).</summary>
public enum ProxyAddress : byte
{
    None = 0,

    /// <summary>4 bytes.</summary>
    IPv4 = 1,

    /// <summary>16 bytes.</summary>
    IPv6 = 2,

    /// <summary>A domain name (SOCKS4a, SOCKS5).</summary>
    Name = 3,

    /// <summary>HTTP CONNECT's "host:port", or an absolute-form target's authority, as the client sent it.</summary>
    Authority = 4,
}

/// <summary>
/// What the kernel decided about a TCP stream past its head (struct
/// guard_stream): a proxy handshake done (<see cref="Verdict"/> 0), or a
/// Stratum verdict, each recorded once, however late in the stream.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct StreamRecord
{
    /// <summary>GUARD_STRATUM_HOLD: the scan's budget ended inside a message or a handshake; the stream is held.</summary>
    public const byte Hold = 3;

    /// <summary>GUARD_SCAN_LIMIT: the bytes of a stream the kernel scans at most.</summary>
    public const int ScanLimit = 65536;

    /// <summary>GUARD_PROXY_HOST_LEN, bytes.</summary>
    public const int ProxyHostCapacity = 64;

    public RecordHeader Header;
    public ulong Cookie;
    public ushort Family;
    public ushort DestinationPort;

    /// <summary>Stream offset of the byte that decided it (a handshake: of the byte after the segment).</summary>
    public uint Offset;

    /// <summary>0, <see cref="GuardMethod.Alert"/>, <see cref="GuardMethod.Drop"/> or <see cref="Hold"/>.</summary>
    public byte Verdict;
    public StreamProxy Proxy;
    public ProxyAddress ProxyAddress;
    public byte ProxyHostLength;

    /// <summary>Host order; 0 for HTTP CONNECT, whose port is in the authority.</summary>
    public ushort ProxyPort;
    public ushort Pad;
    public Bytes16 DestinationAddress;

    /// <summary>The method that decided a Stratum verdict, NUL-padded.</summary>
    public Bytes32 Method;
    public Bytes64 ProxyHost;
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
