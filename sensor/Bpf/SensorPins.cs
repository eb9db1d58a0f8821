namespace Guard.Sensor.Bpf;

/// <summary>
/// An enforcing sensor's own programs, pinned while it runs under
/// PIN_ROOT/sensor/PID-STARTTICKS (bpffs refuses dots in names): if the sensor dies without stopping
/// (SIGKILL, OOM, a crash the runtime cannot unwind), the kernel goes on
/// killing known miners at exec, keeping job membership at fork and dropping
/// Stratum at egress. The next enforcing sensor removes a dead owner's pins
/// once its own programs are attached; <c>guard detach --all</c> removes
/// everything. The owner's start time (clock ticks, /proc/PID/stat field 22)
/// tells a reused pid from the sensor that made the pins.
/// </summary>
public static class SensorPins
{
    /// <summary>Where every sensor's pins live: PIN_ROOT/sensor.</summary>
    public static string Root => Path.Join(Pins.Root, "sensor");

    /// <summary>The pin directory of the sensor with this pid and start time (clock ticks since boot).</summary>
    public static string DirectoryOf(int pid, long startTicks) => Path.Join(Root, $"{pid}-{startTicks}");

    /// <summary>The sensors that have pins, by pid and start time (clock ticks), whether or not they still run.</summary>
    public static IReadOnlyList<(int Pid, long StartTicks)> Owners()
    {
        if (!Directory.Exists(Root))
            return [];
        var owners = new List<(int, long)>();
        foreach (string dir in Directory.EnumerateDirectories(Root))
        {
            string[] parts = Path.GetFileName(dir).Split('-');
            if (parts.Length == 2 && int.TryParse(parts[0], out int pid) && long.TryParse(parts[1], out long ticks))
                owners.Add((pid, ticks));
        }
        return owners;
    }

    /// <summary>Detaches and removes the pins under <paramref name="dir"/>, and the sensor folder when it was the last.</summary>
    public static void Remove(string dir)
    {
        Pins.Remove(dir);
        if (Directory.Exists(Root) && !Directory.EnumerateFileSystemEntries(Root).Any())
            Pins.Remove(Root);
    }

    /// <summary>
    /// Detaches and removes the pins of every sensor for which
    /// <paramref name="isRunning"/> (pid, start ticks) says no; returns their pids.
    /// </summary>
    public static IReadOnlyList<int> RemoveDead(Func<int, long, bool> isRunning)
    {
        var removed = new List<int>();
        foreach ((int pid, long ticks) in Owners())
        {
            if (isRunning(pid, ticks))
                continue;
            Remove(DirectoryOf(pid, ticks));
            removed.Add(pid);
        }
        return removed;
    }
}
