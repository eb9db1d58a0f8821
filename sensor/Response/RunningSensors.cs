using System.Globalization;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// The running sensors, known by identity: each registers itself as
/// RUN_DIR/sensors/PID (/run/guard/sensors/PID), a file holding its start in
/// clock ticks (/proc/PID/stat field 22) and, on a second line, how late its
/// ring's drain may be in milliseconds; it removes the file when it stops.
/// The file's modification time is when the sensor last drained its ring
/// (<see cref="SensorRegistration.MarkDrained"/>), so a stalled sensor shows. Kills
/// refuse exactly these processes: never a process because of the file it
/// runs, and never by a registration whose pid has exited or changed hands,
/// or that root (or this user) did not write.
/// </summary>
public static class RunningSensors
{
    /// <summary>Where the registrations are: RUN_DIR/sensors.</summary>
    public static string Directory => Path.Join(RunDirectory.Path, "sensors");

    /// <summary>
    /// Registers this process as a running sensor until the returned handle is
    /// disposed; clears registrations left by sensors that are gone. Throws
    /// <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/>
    /// when the registration cannot be written.
    /// <paramref name="stallLimit"/> is written for readers that judge <see cref="RegisteredSensor.Stalled"/>.
    /// </summary>
    public static SensorRegistration Register(TimeSpan stallLimit)
    {
        int pid = Environment.ProcessId;
        if (!ProcfsReader.TryReadStat(pid, out ProcfsStat self))
            throw new IOException("cannot read /proc/self/stat");
        string dir = RunDirectory.Ensure("sensors");
        foreach (string stale in System.IO.Directory.EnumerateFiles(dir).Where(f => int.TryParse(Path.GetFileName(f), NumberStyles.None, CultureInfo.InvariantCulture, out _) && Registered(f) is null))
            File.Delete(stale);
        string file = Path.Join(dir, pid.ToString(CultureInfo.InvariantCulture));
        // Written whole, then renamed: a reader never sees half a registration.
        File.WriteAllText(file + ".new", string.Create(CultureInfo.InvariantCulture, $"{self.StartTicks}\n{(long)stallLimit.TotalMilliseconds}\n"));
        File.Move(file + ".new", file, overwrite: true);
        return new SensorRegistration(file);
    }

    /// <summary>Whether the process <paramref name="pid"/> started at <paramref name="startTicks"/> is a registered, running sensor.</summary>
    public static bool IsRunning(int pid, long startTicks) =>
        Registered(Path.Join(Directory, pid.ToString(CultureInfo.InvariantCulture))) is { } sensor && sensor.StartTicks == startTicks;

    /// <summary>Every registered sensor that is running now, by pid.</summary>
    public static IReadOnlyList<RegisteredSensor> List() =>
        System.IO.Directory.Exists(Directory)
            ? [.. System.IO.Directory.EnumerateFiles(Directory).Select(Registered).OfType<RegisteredSensor>().OrderBy(s => s.Pid)]
            : [];

    /// <summary>The sensor a registration file names, when the file is trusted and that very process still runs; else null.</summary>
    private static RegisteredSensor? Registered(string file)
    {
        if (!int.TryParse(Path.GetFileName(file), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
            || Libc.OwnerOf(file) is not uint owner || (owner != 0 && owner != Libc.GetEuid()))
            return null;
        string[] lines;
        DateTime drained;
        try
        {
            lines = File.ReadAllLines(file);
            drained = File.GetLastWriteTimeUtc(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        if (lines.Length == 0 || !long.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks)
            || !ProcfsReader.TryReadStat(pid, out ProcfsStat now) || now.StartTicks != ticks)
            return null;
        TimeSpan? limit = lines.Length > 1 && long.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out long ms)
            ? TimeSpan.FromMilliseconds(ms) : null;
        return new RegisteredSensor(pid, ticks, new DateTimeOffset(drained, TimeSpan.Zero), limit);
    }
}

/// <summary>
/// A running sensor as its registration says: pid and start (clock ticks),
/// when it last drained its ring (wall clock, the file's mtime), and how late
/// that may be (null for a registration that does not say).
/// </summary>
public sealed record RegisteredSensor(int Pid, long StartTicks, DateTimeOffset LastDrained, TimeSpan? StallLimit)
{
    /// <summary>Whether, as of <paramref name="now"/>, the sensor is later draining its ring than it allows itself.</summary>
    public bool Stalled(DateTimeOffset now) => StallLimit is { } limit && now - LastDrained > limit;
}

/// <summary>This sensor's registration: stamped while it drains, removed when disposed.</summary>
public sealed class SensorRegistration : IDisposable
{
    private readonly string file;

    internal SensorRegistration(string file) => this.file = file;

    /// <summary>Records that the ring was drained at <paramref name="when"/> (the file's mtime); a failure is ignored, the next stamp tries again.</summary>
    public void MarkDrained(DateTimeOffset when)
    {
        try
        {
            File.SetLastWriteTimeUtc(file, when.UtcDateTime);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Read as late by `guard status` until the next stamp succeeds.
        }
    }

    /// <summary>Removes the registration, and the answer to its latest policy reload.</summary>
    public void Dispose()
    {
        PolicyReloads.RemoveAnswer();
        try
        {
            File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind it refuses nothing: its pid is gone or another process's.
        }
    }
}
