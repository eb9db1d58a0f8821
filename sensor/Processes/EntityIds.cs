namespace Guard.Sensor.Processes;

/// <summary>Makes entity ids: boot id, start time in ticks, pid.</summary>
public sealed class EntityIds
{
    public EntityIds(string bootId) => BootPrefix = bootId.Replace("-", "", StringComparison.Ordinal)[..Math.Min(12, bootId.Replace("-", "", StringComparison.Ordinal).Length)];

    public string BootPrefix { get; }

    public static EntityIds ForThisBoot() => new(File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim());

    public string For(int pid, long startTicks) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{BootPrefix}-{startTicks}-{pid}");
}
