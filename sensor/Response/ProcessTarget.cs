using System.Globalization;

namespace Guard.Sensor.Response;

/// <summary>What to kill: the process, its descendants too, or its whole job cgroup.</summary>
public enum KillScope
{
    /// <summary>The process alone.</summary>
    Process,

    /// <summary>The process and every descendant, by recorded lineage and live parent pid, stopped first.</summary>
    Tree,

    /// <summary>Every process of its job's cgroup, through cgroup.kill.</summary>
    Job,
}

/// <summary>
/// A process as named by a person: a pid, or an entity id from an event
/// (BOOT-STARTTICKS-PID), which also pins the start time so a reused pid is refused.
/// </summary>
public readonly record struct ProcessTarget(int Pid, long? StartTicks, string? BootPrefix = null)
{
    /// <summary>Reads a pid ("4242") or an entity id ("BOOT-STARTTICKS-PID", BOOT lowercase hex); false for anything else or a pid below 1.</summary>
    public static bool TryParse(string text, out ProcessTarget target)
    {
        target = default;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
        {
            target = new ProcessTarget(pid, null);
            return pid > 0;
        }
        string[] parts = text.Split('-');
        if (parts.Length == 3 && parts[0].Length > 0 && parts[0].All(char.IsAsciiHexDigitLower)
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks)
            && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out pid) && pid > 0)
        {
            target = new ProcessTarget(pid, ticks, parts[0]);
            return true;
        }
        return false;
    }

    /// <summary>"PID", or "PID (started at tick T)" when the start time is pinned.</summary>
    public override string ToString() => StartTicks is long t ? $"{Pid} (started at tick {t})" : Pid.ToString(CultureInfo.InvariantCulture);
}
