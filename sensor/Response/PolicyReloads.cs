using System.Globalization;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// A running sensor's answer to its latest policy reload, as it wrote it
/// beside its registration (RUN_DIR/sensors/PID-START.reload): which answer it is
/// (<see cref="Generation"/>, counting from 1), whether the new policy is in
/// force, the SHA-256 of the policy in force afterwards, and what it said
/// (one line when applied; file:line:key: reason lines when refused).
/// </summary>
public sealed record PolicyReloadAnswer(long Generation, bool Applied, string Sha256, IReadOnlyList<string> Lines);

/// <summary>
/// Asking running sensors to reload their policy (<c>guard policy reload</c>),
/// and their answers. A sensor reloads on SIGHUP, sent here through a pidfd
/// opened on exactly the registered process (<see cref="RunningSensors"/>); it
/// answers by writing its <see cref="PolicyReloadAnswer"/>, which the asker
/// waits for.
/// </summary>
public static class PolicyReloads
{
    private const int Sighup = 1;

    /// <summary>How long an asker waits for a sensor's answer: a reload reads a file and writes a few map entries.</summary>
    public static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Where the sensor <paramref name="pid"/> that started at <paramref name="startTicks"/>
    /// writes its answers: named by both, so an answer a SIGKILLed sensor left behind never
    /// answers for a later process that reuses its pid (its higher generation would hide every new answer).
    /// </summary>
    public static string AnswerFile(int pid, long startTicks) =>
        Path.Join(RunningSensors.Directory, string.Create(CultureInfo.InvariantCulture, $"{pid}-{startTicks}.reload"));

    /// <summary>This process's own answer file.</summary>
    private static string OwnAnswerFile() =>
        AnswerFile(Environment.ProcessId, ProcfsReader.TryReadStat(Environment.ProcessId, out ProcfsStat self) ? self.StartTicks : 0);

    /// <summary>Writes this process's answer (whole, then renamed into place, so a reader never sees half of one).</summary>
    /// <exception cref="IOException">The run directory cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">The run directory cannot be written.</exception>
    public static void WriteAnswer(PolicyReloadAnswer answer)
    {
        string file = OwnAnswerFile();
        string text = string.Create(CultureInfo.InvariantCulture,
            $"{answer.Generation}\n{(answer.Applied ? "applied" : "refused")}\n{answer.Sha256}\n{string.Join("\n", answer.Lines.Select(l => l.ReplaceLineEndings(" ")))}\n");
        File.WriteAllText(file + ".new", text);
        File.Move(file + ".new", file, overwrite: true);
    }

    /// <summary>The latest answer of the sensor <paramref name="pid"/> that started at <paramref name="startTicks"/>; null when it wrote none, or the file is not root's (or this user's).</summary>
    public static PolicyReloadAnswer? ReadAnswer(int pid, long startTicks)
    {
        string file = AnswerFile(pid, startTicks);
        if (Libc.OwnerOf(file) is not uint owner || (owner != 0 && owner != Libc.GetEuid()))
            return null;
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return lines.Length >= 3 && long.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out long generation)
            ? new PolicyReloadAnswer(generation, lines[1] == "applied", lines[2], lines[3..])
            : null;
    }

    /// <summary>Removes this process's answer file (the sensor stops).</summary>
    public static void RemoveAnswer()
    {
        try
        {
            File.Delete(OwnAnswerFile());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind, it answers for a pid that no registration names.
        }
    }

    /// <summary>
    /// Asks <paramref name="sensor"/> to reload its policy (SIGHUP through a
    /// pidfd checked against its start) and waits up to <paramref name="wait"/>
    /// for its answer.
    /// </summary>
    /// <exception cref="SensorException">The sensor is gone, could not be signalled, or did not answer in time.</exception>
    public static PolicyReloadAnswer Ask(RegisteredSensor sensor, TimeSpan wait)
    {
        using Pidfd pidfd = Pidfd.TryOpen(sensor.Pid, out int errno)
            ?? throw new SensorException($"sensor pid {sensor.Pid} is gone ({Libc.ErrorText(errno)})");
        // Checked after the handle is open: the handle is on the registered process, not a later one of its pid.
        if (!ProcfsReader.TryReadStat(sensor.Pid, out ProcfsStat stat) || stat.StartTicks != sensor.StartTicks)
            throw new SensorException($"sensor pid {sensor.Pid} is gone");
        long before = ReadAnswer(sensor.Pid, sensor.StartTicks)?.Generation ?? 0;
        int rc = pidfd.Signal(Sighup);
        if (rc != 0)
            throw new SensorException($"cannot signal sensor pid {sensor.Pid}: {Libc.ErrorText(rc)}");
        DateTime deadline = DateTime.UtcNow + wait;
        while (DateTime.UtcNow < deadline)
        {
            if (ReadAnswer(sensor.Pid, sensor.StartTicks) is { } answer && answer.Generation > before)
                return answer;
            if (pidfd.HasExited)
                throw new SensorException($"sensor pid {sensor.Pid} exited before it answered");
            Thread.Sleep(20);
        }
        throw new SensorException($"sensor pid {sensor.Pid} did not answer within {wait.TotalSeconds:F0} s (stalled? see guard status)");
    }
}
