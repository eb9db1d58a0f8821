using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>Checks, before anything is loaded, that this process may load and attach the programs.</summary>
public static unsafe class Privileges
{
    private const int CapSysAdmin = 21;
    private const int CapPerfmon = 38;
    private const int CapBpf = 39;
    private const uint LinuxCapabilityVersion3 = 0x20080522;

    /// <summary>Names of the capabilities the sensor needs and lacks; empty when all are there.</summary>
    public static IReadOnlyList<string> Missing()
    {
        uint* header = stackalloc uint[2];
        header[0] = LinuxCapabilityVersion3;
        header[1] = 0;
        uint* data = stackalloc uint[6]; // two { effective, permitted, inheritable }
        if (Libc.Syscall(Libc.SysCapget, (nint)header, (nint)data, 0, 0) != 0)
            throw new SensorException($"cannot read this process's capabilities: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        ulong effective = data[0] | ((ulong)data[3] << 32);
        var missing = new List<string>();
        if ((effective & (1UL << CapBpf)) == 0)
            missing.Add("CAP_BPF");
        if ((effective & (1UL << CapPerfmon)) == 0)
            missing.Add("CAP_PERFMON");
        if ((effective & (1UL << CapSysAdmin)) == 0)
            missing.Add("CAP_SYS_ADMIN");
        return missing;
    }

    public static void Require(string what)
    {
        IReadOnlyList<string> missing = Missing();
        if (missing.Count > 0)
            throw new SensorException($"{what} needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN; this process lacks {string.Join(", ", missing)}");
    }
}
