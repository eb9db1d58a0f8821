using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// The pseudo file systems the programs need. A fresh machine may lack tracefs
/// (tracepoint attach reads event ids from it); the sensor mounts it itself,
/// as Tetragon does, and bpffs, where quarantine state is pinned. cgroup v2
/// may sit at /sys/fs/cgroup or, on hybrid hosts, at /sys/fs/cgroup/unified.
/// </summary>
public static class KernelMounts
{
    public const string TraceFs = "/sys/kernel/tracing";

    public static string FindCgroup2Root(string mountsFile = "/proc/self/mounts")
    {
        foreach (string line in File.ReadLines(mountsFile))
        {
            string[] fields = line.Split(' ');
            if (fields.Length > 2 && fields[2] == "cgroup2")
                return fields[1];
        }
        throw new SensorException("no cgroup v2 hierarchy is mounted (looked in /proc/self/mounts); the socket and device programs attach there");
    }

    public const string BpfFs = "/sys/fs/bpf";

    public static void EnsureTraceFs() => EnsureMounted(TraceFs, "tracefs", "tracefs");

    public static void EnsureBpfFs() => EnsureMounted(BpfFs, "bpf", "bpf");

    private static void EnsureMounted(string target, string type, string source)
    {
        if (IsMounted(target, type))
            return;
        Directory.CreateDirectory(target);
        if (Libc.Mount(source, target, type, 0, 0) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new SensorException($"{type} is not mounted at {target} and mounting it failed: {Libc.ErrorText(errno)}");
        }
    }

    private static bool IsMounted(string target, string type)
    {
        foreach (string line in File.ReadLines("/proc/self/mounts"))
        {
            string[] fields = line.Split(' ');
            if (fields.Length > 2 && fields[1] == target && fields[2] == type)
                return true;
        }
        return false;
    }
}
