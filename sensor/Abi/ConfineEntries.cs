using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Abi;

/// <summary>enum guard_confine_mode in bpf/guard.h: what the kernel does with a denied destination.</summary>
public enum ConfineKernelMode : uint
{
    /// <summary>GUARD_CONFINE_ENFORCE: EPERM, or the packet dropped.</summary>
    Enforce = 1,

    /// <summary>GUARD_CONFINE_AUDIT: counted, let through.</summary>
    Audit = 2,

    /// <summary>GUARD_CONFINE_ASK: denied as enforce; user space raises a request.</summary>
    Ask = 3,
}

/// <summary>enum guard_confine_what in bpf/guard.h: what was denied.</summary>
public enum ConfineWhat : byte
{
    /// <summary>GUARD_CONFINE_CONNECT: connect(2), TCP or UDP.</summary>
    Connect = 1,

    /// <summary>GUARD_CONFINE_SEND: an unconnected UDP send.</summary>
    Send = 2,

    /// <summary>GUARD_CONFINE_EGRESS: a packet of a socket connected before the rule, dropped.</summary>
    Egress = 3,

    /// <summary>GUARD_CONFINE_PASSED: a send on a socket the job did not make (passed in, inherited); the send had gone, the sender was killed.</summary>
    Passed = 4,
}

/// <summary>
/// Value of confine_cgroups and confine_tgids (struct guard_confine_job in
/// bpf/guard.h): a confined job's rule sets and mode.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineJob
{
    /// <summary>The section's rule set (every job it selects shares it).</summary>
    public uint Section;

    /// <summary>The job's own rule set (DNS answers, approvals); 0: none.</summary>
    public uint Job;

    /// <summary><see cref="ConfineKernelMode"/>.</summary>
    public uint Mode;
    public uint Pad;

    /// <summary>confine_tgids: the process's start in clock ticks, as /proc shows it; 0 in confine_cgroups.</summary>
    public ulong StartTicks;
}

/// <summary>Key of confine_allow (an LPM trie): a rule set, then an address as IPv6 (IPv4 v4-mapped).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineKey
{
    /// <summary>GUARD_CONFINE_LEVELS: cgroup levels below the root a confined job cgroup may be at (1 to this - 1).</summary>
    public const int Levels = 32;

    /// <summary>The set's 32 bits plus the address bits.</summary>
    public uint PrefixLength;
    public uint Set;
    public Bytes16 Address;
}

/// <summary>struct guard_port_range in bpf/guard.h: ports Low to High (host order) of one protocol (0: any).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardPortRange
{
    public ushort Low;
    public ushort High;
    public byte Protocol;
    public Bytes3 Pad;
}

/// <summary>The ranges of a <see cref="GuardConfinePorts"/>, GUARD_CONFINE_RANGES of them.</summary>
[InlineArray(GuardConfinePorts.Capacity)]
public struct GuardPortRanges
{
    private GuardPortRange first;
}

/// <summary>Value of confine_allow (struct guard_confine_ports in bpf/guard.h): the ports allowed at one prefix, those of its shorter prefixes folded in.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfinePorts
{
    /// <summary>GUARD_CONFINE_RANGES.</summary>
    public const int Capacity = 8;

    public uint Count;
    public uint Pad;

    /// <summary>CLOCK_BOOTTIME ns after which the entry allows nothing; 0: never.</summary>
    public ulong ExpiresNs;
    public GuardPortRanges Ranges;
}

/// <summary>Key of confine_denials (struct guard_confine_denial_key in bpf/guard.h): one denied destination of one job.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineDenialKey
{
    public uint Section;
    public uint Job;
    public Bytes16 Address;

    /// <summary>Host order.</summary>
    public ushort Port;
    public byte Protocol;

    /// <summary><see cref="ConfineWhat"/>.</summary>
    public byte What;
    public uint Pad;
}

/// <summary>Value of confine_denials (struct guard_confine_denial in bpf/guard.h), counted in place by the kernel.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineDenial
{
    public ulong Count;

    /// <summary>CLOCK_BOOTTIME ns of the first and the latest.</summary>
    public ulong FirstNs;
    public ulong LastNs;

    /// <summary>The latest denied process's start (0 at egress: no process there).</summary>
    public ulong StartTimeNs;
    public uint Tgid;

    /// <summary><see cref="ConfineKernelMode"/> at the latest.</summary>
    public uint Mode;
    public Bytes16 Comm;
}

/// <summary>
/// Key of confine_names (struct guard_confine_name_key in bpf/guard.h): a section's
/// DNS name in wire form (length-prefixed labels, lower case, no final zero), zero padded.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineNameKey
{
    /// <summary>GUARD_CONFINE_NAME_MAX: wire bytes of the longest name the kernel keys.</summary>
    public const int Capacity = 128;

    public uint Set;

    /// <summary>Bytes of <see cref="Name"/> used.</summary>
    public uint Length;
    public Bytes128 Name;
}

/// <summary>Value of confine_names (struct guard_confine_name in bpf/guard.h): ports for the name itself and for names under it; Count 0: not allowed so.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineName
{
    public GuardConfinePorts Exact;
    public GuardConfinePorts Under;
}

/// <summary>Key of confine_resolvers (struct guard_confine_resolver_key in bpf/guard.h): a section's resolver.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineResolverKey
{
    public uint Set;

    /// <summary>IPv6, IPv4 v4-mapped.</summary>
    public Bytes16 Address;
}
