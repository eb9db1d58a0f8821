using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>A capability by its number in linux/capability.h.</summary>
public enum Capability
{
    /// <summary>CAP_KILL: signal processes of other users.</summary>
    Kill = 5,

    /// <summary>CAP_SYS_PTRACE: pidfd_getfd, /proc of other users' processes.</summary>
    SysPtrace = 19,

    /// <summary>CAP_SYS_ADMIN: cgroup attach, bpffs, open_by_handle_at.</summary>
    SysAdmin = 21,

    /// <summary>CAP_PERFMON: tracing programs.</summary>
    Perfmon = 38,

    /// <summary>CAP_BPF: load programs and maps.</summary>
    Bpf = 39,
}

/// <summary>Checks, before anything is loaded or done, that this process may load the programs, or act on the host.</summary>
public static unsafe class Privileges
{
    private const uint LinuxCapabilityVersion3 = 0x20080522;

    /// <summary>What acting on held jobs and Guard's pins needs: pin and detach programs, stop and signal any process.</summary>
    public static readonly IReadOnlyList<Capability> ToHold = [Capability.Bpf, Capability.SysAdmin, Capability.Kill];

    /// <summary>What killing a process of any user needs.</summary>
    public static readonly IReadOnlyList<Capability> ToKill = [Capability.Kill];

    private static readonly Capability[] ToLoad = [Capability.Bpf, Capability.Perfmon, Capability.SysAdmin];

    /// <summary>Names of the capabilities the sensor needs and lacks; empty when all are there.</summary>
    /// <exception cref="SensorException">capget(2) failed.</exception>
    public static IReadOnlyList<string> Missing() => MissingOf(ToLoad);

    /// <summary>Names (CAP_BPF) of those of <paramref name="needed"/> this process lacks in its effective set.</summary>
    /// <exception cref="SensorException">capget(2) failed.</exception>
    public static IReadOnlyList<string> MissingOf(IEnumerable<Capability> needed)
    {
        ulong effective = Effective();
        return [.. needed.Where(c => (effective & (1UL << (int)c)) == 0).Select(Name)];
    }

    /// <summary>Throws unless this process may load and attach the programs.</summary>
    /// <exception cref="SensorException">A capability is missing: names them.</exception>
    public static void Require(string what)
    {
        IReadOnlyList<string> missing = Missing();
        if (missing.Count > 0)
            throw new SensorException($"{what} needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN; this process lacks {string.Join(", ", missing)}");
    }

    /// <summary>
    /// Who may act (kill, quarantine, release, detach, reload): root, or a
    /// process with every capability in <paramref name="needed"/>. Null when
    /// this process may; else the one line that refuses it, said before
    /// anything is read or done, so a refused caller learns nothing and
    /// signals nothing (not even its own processes, which the kernel would let it).
    /// </summary>
    /// <exception cref="SensorException">capget(2) failed.</exception>
    public static string? RefusalToAct(string what, IReadOnlyList<Capability> needed)
    {
        uint euid = Libc.GetEuid();
        if (euid == 0)
            return null;
        IReadOnlyList<string> missing = MissingOf(needed);
        return missing.Count == 0 ? null
            : $"{what}: only root may act on this host (uid {euid} lacks {string.Join(", ", missing)}); run it with sudo";
    }

    private static ulong Effective()
    {
        uint* header = stackalloc uint[2];
        header[0] = LinuxCapabilityVersion3;
        header[1] = 0;
        uint* data = stackalloc uint[6]; // two { effective, permitted, inheritable }
        if (Libc.Syscall(Libc.SysCapget, (nint)header, (nint)data, 0, 0) != 0)
            throw new SensorException($"cannot read this process's capabilities: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        return data[0] | ((ulong)data[3] << 32);
    }

    private static string Name(Capability c) => c switch
    {
        Capability.Kill => "CAP_KILL",
        Capability.SysPtrace => "CAP_SYS_PTRACE",
        Capability.SysAdmin => "CAP_SYS_ADMIN",
        Capability.Perfmon => "CAP_PERFMON",
        Capability.Bpf => "CAP_BPF",
        _ => $"capability {(int)c}",
    };
}
