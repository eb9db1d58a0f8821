using System.Net;

namespace Guard.Sensor.Detection;

/// <summary>What a [[confine]] section does with what it would deny.</summary>
public enum ConfineMode
{
    /// <summary>Denied in the kernel: EPERM for a connect or a send, SIGKILL for an exec.</summary>
    Enforce,

    /// <summary>Recorded as a denial, nothing denied.</summary>
    Audit,

    /// <summary>Denied as under enforce, and raised as an approval request a person answers.</summary>
    Ask,
}

/// <summary>Which transport an egress rule allows.</summary>
public enum ConfineProtocol
{
    /// <summary>TCP and UDP.</summary>
    Any = 0,

    /// <summary>TCP only (IPPROTO_TCP, 6).</summary>
    Tcp = 6,

    /// <summary>UDP only, QUIC included (IPPROTO_UDP, 17).</summary>
    Udp = 17,
}

/// <summary>Destination ports from <see cref="Low"/> to <see cref="High"/>, both included; 0-65535 is every port.</summary>
public readonly record struct PortRange(ushort Low, ushort High)
{
    /// <summary>Every port.</summary>
    public static PortRange All { get; } = new(0, ushort.MaxValue);

    /// <summary>Whether the range is every port.</summary>
    public bool IsAll => Low == 0 && High == ushort.MaxValue;

    /// <inheritdoc/>
    public override string ToString() => IsAll ? "*" : Low == High ? $"{Low}" : $"{Low}-{High}";
}

/// <summary>An egress rule by address: <paramref name="Network"/>/<paramref name="PrefixLength"/> (IPv4 or IPv6), ports, transport.</summary>
/// <param name="Text">The entry as the policy wrote it.</param>
public sealed record EgressAddress(IPAddress Network, int PrefixLength, PortRange Ports, ConfineProtocol Protocol, string Text);

/// <summary>
/// An egress rule by DNS name: the addresses the job's own DNS answers give
/// for <paramref name="Name"/> (lower case, no trailing dot), or for any name
/// under it when <paramref name="Suffix"/> ("*.s3.amazonaws.com").
/// </summary>
public sealed record EgressName(string Name, bool Suffix, PortRange Ports, ConfineProtocol Protocol, string Text)
{
    /// <summary>Whether <paramref name="queried"/> (lower case, no trailing dot) is this name, or under it for a suffix rule.</summary>
    public bool Matches(string queried) =>
        Suffix ? queried.Length > Name.Length + 1 && queried.EndsWith("." + Name, StringComparison.Ordinal) : queried == Name;
}

/// <summary>Where a confined job may connect and send: everything else is denied; DNS to the resolvers stays open.</summary>
public sealed record ConfineEgress(IReadOnlyList<EgressAddress> Addresses, IReadOnlyList<EgressName> Names);

/// <summary>Kinds of program an exec rule can name at once.</summary>
public enum ExecClass
{
    /// <summary>sh, bash, dash, zsh, ksh, fish, csh, tcsh, busybox.</summary>
    Shells,

    /// <summary>pip, conda, apt, dnf, npm and their kin.</summary>
    PackageManagers,

    /// <summary>cc, gcc, clang, g++, rustc, go, nvcc and their kin.</summary>
    Compilers,

    /// <summary>curl, wget, aria2c, scp, rsync, ftp, tftp, nc.</summary>
    Downloaders,

    /// <summary>python, perl, ruby, node, lua, php, tclsh and their kin: each runs code given on its command line.</summary>
    Interpreters,

    /// <summary>A file in a world-writable directory (/tmp, /dev/shm, /var/tmp).</summary>
    WorldWritable,

    /// <summary>A file with no name in any directory (memfd_create): fileless.</summary>
    Memfd,
}

/// <summary>One exec rule: a path glob, a SHA-256, or a class; exactly one is set.</summary>
/// <param name="Text">The entry as the policy wrote it.</param>
public sealed record ExecRule(string? PathGlob, string? Sha256, ExecClass? Class, string Text);

/// <summary>Programs a confined job may not run (<see cref="Deny"/>), less those it may (<see cref="Allow"/>, which wins).</summary>
public sealed record ConfineExec(IReadOnlyList<ExecRule> Allow, IReadOnlyList<ExecRule> Deny);

/// <summary>The GPU devices (by index, /dev/nvidiaN) a confined job's processes may open; every other one is denied.</summary>
public sealed record ConfineGpu(IReadOnlyList<int> Devices);

/// <summary>
/// Which jobs a section confines; a job is selected when any list matches.
/// <paramref name="Jobs"/>: job id globs ("slurm:*", "k8s-pod:*", "*" every job);
/// <paramref name="Launchers"/>: a launcher's comm or absolute path, whose tree is the job;
/// <paramref name="Users"/> and <paramref name="Groups"/>: the job's first process's, by name or number.
/// </summary>
public sealed record ConfineSelector(IReadOnlyList<string> Jobs, IReadOnlyList<string> Launchers, IReadOnlyList<string> Users, IReadOnlyList<string> Groups);

/// <summary>
/// One [[confine]] section: which jobs, what they may reach, run and open,
/// and what a denial does. A part left out confines nothing of its kind.
/// </summary>
/// <param name="Name">The section's name (name = "..."), or "confine#N" by its place in the policy.</param>
/// <param name="Source">file:line of the section's header: where a denial's rule came from.</param>
/// <param name="Resolvers">DNS servers the job may always reach (UDP and TCP 53), and whose answers allow names.</param>
/// <param name="AskExpirySeconds">Under <see cref="ConfineMode.Ask"/>: how long an approval request waits for an answer before it expires (ask_expiry_seconds; <see cref="DefaultAskExpirySeconds"/> when not given).</param>
public sealed record ConfineSection(
    string Name, string Source, ConfineSelector Select, ConfineMode Mode, IReadOnlyList<IPAddress> Resolvers,
    ConfineEgress? Egress, ConfineExec? Exec, ConfineGpu? Gpu, int AskExpirySeconds = ConfineSection.DefaultAskExpirySeconds)
{
    /// <summary>How long an approval request waits by default: 15 minutes, long enough for a person paged to answer, short enough that a stale request is not approved by mistake.</summary>
    public const int DefaultAskExpirySeconds = 900;

    /// <summary>The longest ask_expiry_seconds a policy may give: a day.</summary>
    public const int MaxAskExpirySeconds = 86_400;
}
