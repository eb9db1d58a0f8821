using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>
/// Converts the kernel's start_boottime (ns) into the clock ticks /proc shows,
/// so ids made from /proc at start and from live events agree.
/// </summary>
public static class ClockTicks
{
    public static readonly long PerSecond = Math.Max(Libc.SysConf(Libc.ScClockTicks), 1);

    private static readonly long NsPerTick = 1_000_000_000 / PerSecond;

    public static long FromBootNs(ulong ns) => (long)(ns / (ulong)NsPerTick);
}
