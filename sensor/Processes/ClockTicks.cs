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

/// <summary>Makes entity ids: boot id, start time in ticks, pid.</summary>
public sealed class EntityIds
{
    public EntityIds(string bootId) => BootPrefix = bootId.Replace("-", "", StringComparison.Ordinal)[..Math.Min(12, bootId.Replace("-", "", StringComparison.Ordinal).Length)];

    public string BootPrefix { get; }

    public static EntityIds ForThisBoot() => new(File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim());

    public string For(int pid, long startTicks) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{BootPrefix}-{startTicks}-{pid}");
}

/// <summary>The kernel's comm: what it keeps of a program's name (15 bytes).</summary>
public static class Comm
{
    public const int MaxBytes = 15;

    public static string Of(string name)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(name);
        return bytes.Length <= MaxBytes ? name : System.Text.Encoding.UTF8.GetString(bytes, 0, MaxBytes);
    }
}
