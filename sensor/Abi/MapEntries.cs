using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Abi;

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

/// <summary>
/// Key of miner_names, an LPM trie (struct guard_name_key in bpf/guard.h):
/// <see cref="MinerNamePattern.KeyBytes"/> and their length in bits.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardNameKey
{
    public uint PrefixLength;
    public Bytes16 Name;
}

/// <summary>
/// Value of job_members (struct guard_job_member in bpf/guard.h): the job a
/// process is in, as the kernel keeps it from exec and fork.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardJobMember
{
    /// <summary>The launcher (a jobs.roots exec) above the process; 0: none.</summary>
    public uint RootPid;
    public uint Pad;

    /// <summary>The launcher's start, CLOCK_BOOTTIME ns.</summary>
    public ulong RootStartTimeNs;

    /// <summary>The job's own cgroup (its id: the directory's inode on cgroup v2); 0: none.</summary>
    public ulong CgroupId;
}

/// <summary>
/// Key of job_units (struct guard_cgroup_name in bpf/guard.h): a cgroup
/// directory name, NUL-padded. Also where the kernel's reading of cgroup
/// names stops: names of <see cref="Capacity"/> - 1 bytes or more name no job,
/// and only the first <see cref="JobLevels"/> levels below the root are read.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardCgroupName
{
    /// <summary>GUARD_CGROUP_NAME_LEN, bytes.</summary>
    public const int Capacity = 128;

    /// <summary>GUARD_CGROUP_JOB_LEVELS: levels below the root read for a job's name.</summary>
    public const int JobLevels = 16;

    public Bytes128 Name;
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

/// <summary>Key of quarantine_devices: a GPU device file the held may not open.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardDeviceKey
{
    public uint Major;
    public int Minor;
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

/// <summary>
/// Value of rounding_switches, per process: context switches seen in each
/// non-default rounding mode of SSE (MXCSR) or x87 (the control word), once
/// per mode either register holds. Mirrors struct guard_rounding in bpf/guard.h.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardRounding
{
    /// <summary>The non-default modes, rounding control 1 to 3 of MXCSR or the x87 control word, one encoding (Intel SDM vol. 1, 4.8.4.1 and 10.2.3).</summary>
    public const int Modes = 3;

    /// <summary>The process's start, CLOCK_BOOTTIME ns: with the pid, which process the counts are of.</summary>
    public ulong StartTimeNs;

    /// <summary>Switches per mode, [mode - 1]: down, up, toward zero.</summary>
    public RoundingModeSwitches Switches;
}

/// <summary>Key of rounding_exited: an ended process by pid and start. Mirrors struct guard_rounding_key in bpf/guard.h (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardRoundingKey
{
    /// <summary>The process id (the kernel's tgid).</summary>
    public uint Tgid;

    /// <summary>Zero; the start's alignment.</summary>
    public uint Pad;

    /// <summary>The process's start, CLOCK_BOOTTIME ns.</summary>
    public ulong StartTimeNs;
}

[InlineArray(GuardRounding.Modes)]
public struct RoundingModeSwitches
{
    private ulong first;
}

/// <summary>
/// Value of the tgid-keyed membership maps (struct guard_member): quarantine_tgids
/// (<see cref="Id"/> is the hold) and lineage_stopping (<see cref="Id"/> is when the
/// stop lapses, CLOCK_BOOTTIME ns). <see cref="StartTicks"/> is the process's start
/// in clock ticks, as /proc/PID/stat field 22 shows it: a reused tgid never matches.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardMember
{
    public ulong Id;
    public ulong StartTicks;
}

/// <summary>A process as the kernel knows it (struct guard_process_id): tgid and its group leader's start, CLOCK_BOOTTIME ns.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardProcessId
{
    /// <summary>Nanoseconds in one clock tick of /proc/PID/stat (USER_HZ 100), GUARD_NS_PER_TICK.</summary>
    public const ulong NsPerTick = 10_000_000;

    public uint Tgid;
    public uint Pad;
    public ulong StartTimeNs;

    /// <summary>The start in clock ticks, as /proc/PID/stat field 22 shows it.</summary>
    public readonly long StartTicks => (long)(StartTimeNs / NsPerTick);
}

/// <summary>Value of the lineage map (struct guard_lineage), keyed by the process's <see cref="GuardProcessId"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardLineage
{
    public GuardProcessId Self;

    /// <summary>Who forked it (the caller, not the real parent), or the nearest recorded creator above one that exited.</summary>
    public GuardProcessId Creator;

    /// <summary>1 while it runs, plus one for each entry that names it as creator.</summary>
    public uint Refs;

    /// <summary>1 until it exits.</summary>
    public uint Alive;
}

/// <summary>
/// The head of a sock_owners value (struct guard_sock_owner in bpf/guard.h):
/// the process that connected a socket while Guard watched. An accepted
/// socket has none.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardSockOwner
{
    /// <summary>Its group leader's start, CLOCK_BOOTTIME ns.</summary>
    public ulong StartTimeNs;

    /// <summary>Its tgid.</summary>
    public uint Pid;
    public uint Pad;
}

/// <summary>
/// A unix_heads value (struct guard_unix_head in bpf/guard.h): the first bytes
/// written into a unix stream socket while Guard watched, kept on the
/// receiving end, and who wrote the first of them.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardUnixHead
{
    /// <summary>GUARD_UNIX_HEAD_LEN: the bytes kept at most.</summary>
    public const int Capacity = 256;

    /// <summary>The first writer's start, CLOCK_BOOTTIME ns.</summary>
    public ulong StartTimeNs;

    /// <summary>The first writer's tgid.</summary>
    public uint Pid;

    /// <summary>Bytes in <see cref="Data"/>, at most <see cref="Capacity"/>.</summary>
    public ushort Length;

    /// <summary><see cref="MixedFlag"/> or 0.</summary>
    public ushort Flags;

    /// <summary>Twice the capture (the kernel's copy stays inside it at any offset); the first <see cref="Length"/> bytes count.</summary>
    public Bytes512 Data;

    /// <summary>GUARD_UNIX_HEAD_MIXED: a process other than <see cref="Pid"/> wrote some of <see cref="Data"/>.</summary>
    public const ushort MixedFlag = 1;

    /// <summary>Whether one process, <see cref="Pid"/>, wrote every byte kept.</summary>
    public readonly bool OneWriter => Pid != 0 && (Flags & MixedFlag) == 0;
}

/// <summary>
/// A unix_dgram_heads value (struct guard_unix_dgram_heads in bpf/guard.h):
/// the first bytes each of the first <see cref="Writers"/> senders sent to a
/// unix datagram socket while Guard watched, each in a head of its own.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardUnixDgramHeads
{
    /// <summary>GUARD_UNIX_DGRAM_WRITERS: the senders kept at most.</summary>
    public const int Writers = 4;

    /// <summary>Datagrams from senders past those kept.</summary>
    public uint Others;
    public uint Pad;

    /// <summary>The senders' heads; an unused one has pid 0.</summary>
    public WriterHeads Heads;

    /// <summary>The <see cref="Writers"/> heads, inline.</summary>
    [System.Runtime.CompilerServices.InlineArray(Writers)]
    public struct WriterHeads
    {
        private GuardUnixHead first;
    }
}
