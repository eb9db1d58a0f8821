using System.Globalization;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// The running sensors, known by identity: each registers itself as
/// RUN_DIR/sensors/PID (/run/guard/sensors/PID), a file holding its start in
/// clock ticks (/proc/PID/stat field 22), and removes it when it stops. Kills
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
    /// </summary>
    public static IDisposable Register()
    {
        int pid = Environment.ProcessId;
        if (!ProcfsReader.TryReadStat(pid, out ProcfsStat self))
            throw new IOException("cannot read /proc/self/stat");
        string dir = RunDirectory.Ensure("sensors");
        foreach (string stale in System.IO.Directory.EnumerateFiles(dir).Where(f => int.TryParse(Path.GetFileName(f), NumberStyles.None, CultureInfo.InvariantCulture, out _) && Registered(f) is null))
            File.Delete(stale);
        string file = Path.Join(dir, pid.ToString(CultureInfo.InvariantCulture));
        // Written whole, then renamed: a reader never sees half a registration.
        File.WriteAllText(file + ".new", self.StartTicks.ToString(CultureInfo.InvariantCulture) + "\n");
        File.Move(file + ".new", file, overwrite: true);
        return new Registration(file);
    }

    /// <summary>Whether the process <paramref name="pid"/> started at <paramref name="startTicks"/> is a registered, running sensor.</summary>
    public static bool IsRunning(int pid, long startTicks) =>
        Registered(Path.Join(Directory, pid.ToString(CultureInfo.InvariantCulture))) is { } sensor && sensor.StartTicks == startTicks;

    /// <summary>Every registered sensor that is running now, by pid and start.</summary>
    public static IReadOnlyList<(int Pid, long StartTicks)> List() =>
        System.IO.Directory.Exists(Directory)
            ? [.. System.IO.Directory.EnumerateFiles(Directory).Select(Registered).OfType<(int, long)>().Order()]
            : [];

    /// <summary>The sensor a registration file names, when the file is trusted and that very process still runs; else null.</summary>
    private static (int Pid, long StartTicks)? Registered(string file)
    {
        if (!int.TryParse(Path.GetFileName(file), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
            || Libc.OwnerOf(file) is not uint owner || (owner != 0 && owner != Libc.GetEuid()))
            return null;
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long ticks)
            && ProcfsReader.TryReadStat(pid, out ProcfsStat now) && now.StartTicks == ticks
            ? (pid, ticks)
            : null;
    }

    private sealed class Registration(string file) : IDisposable
    {
        public void Dispose()
        {
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
}
