using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// Guard's state in bpffs: links pinned so programs stay attached with no
/// process holding them, under one root (quarantine/ and enforce/ below it).
/// </summary>
public static class Pins
{
    public const string DefaultRoot = "/sys/fs/bpf/guard";

    /// <summary>
    /// GUARD_PIN_ROOT when set, so test runs side by side (and a test beside a
    /// production sensor) never share holds or enforcement.
    /// </summary>
    public static string Root => Environment.GetEnvironmentVariable("GUARD_PIN_ROOT") is { Length: > 0 } root ? root : DefaultRoot;

    /// <summary>Attaches a program (at a cgroup, or where its section says) and pins its link at <paramref name="pin"/>.</summary>
    internal static void AttachAndPin(nint obj, string name, FileDescriptor? cgroup, string pin)
    {
        nint program = Libbpf.FindProgram(obj, name);
        if (program == 0)
            throw new SensorException($"the BPF object has no program {name}: sensor and object disagree");
        LibbpfLog.Clear();
        nint link = cgroup is null ? Libbpf.ProgramAttach(program) : Libbpf.ProgramAttachCgroup(program, cgroup.Fd);
        if (link == 0)
            throw new SensorException($"BPF program {name} could not attach: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(pin)!);
            int err = Libbpf.LinkPin(link, pin);
            if (err != 0)
                throw new SensorException($"cannot pin {name} at {pin}: {Libc.ErrorText(-err)}");
        }
        finally
        {
            // Closes our descriptor: a pinned link stays attached through its pin, one that failed to pin goes.
            _ = Libbpf.LinkDestroy(link);
        }
    }

    /// <summary>
    /// Detaches every pinned link below <paramref name="dir"/>, then removes the
    /// pins. Removing a pin alone frees its link only after an RCU grace period
    /// and a work item: what is removed must be off when this returns.
    /// </summary>
    public static void Remove(string dir)
    {
        if (!Directory.Exists(dir))
            return;
        foreach (string pin in Links(dir))
        {
            int fd = Libbpf.ObjectGet(pin);
            if (fd < 0)
                continue;
            using var link = new FileDescriptor(fd);
            _ = Libbpf.LinkDetach(link.Fd); // a link kind without detach: its pin removal will do
        }
        Directory.Delete(dir, recursive: true);
        // The root goes with its last state: nothing of Guard's is left in bpffs.
        string root = Root;
        if (Directory.Exists(root) && !Directory.EnumerateFileSystemEntries(root).Any())
            Directory.Delete(root);
    }

    /// <summary>Every pinned link below <paramref name="dir"/> (links are named after their program, guard_*).</summary>
    public static IReadOnlyList<string> Links(string dir) =>
        Directory.Exists(dir) ? [.. Directory.EnumerateFiles(dir, BpfProgramNames.Prefix + "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)] : [];
}
