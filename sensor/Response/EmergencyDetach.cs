using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>What `guard detach --all` did.</summary>
/// <param name="Signalled">The sensors asked to stop (SIGTERM).</param>
/// <param name="Released">The holds released, by name.</param>
/// <param name="Remaining">Guard programs still loaded when it gave up waiting.</param>
/// <param name="PinsRemoved">Whether there were pins under the pin root, now removed.</param>
public sealed record DetachOutcome(IReadOnlyList<int> Signalled, IReadOnlyList<string> Released, IReadOnlyList<LoadedProgram> Remaining, bool PinsRemoved)
{
    /// <summary>Whether no Guard program is left loaded.</summary>
    public bool Done => Remaining.Count == 0;

    /// <summary>The audit event: who switched Guard off, and what was stopped.</summary>
    public Events.ActionEvent ToActionEvent() => new()
    {
        Action = "detach-all",
        Succeeded = Done,
        Message = Done
            ? $"stopped {Signalled.Count} sensor(s){(Released.Count > 0 ? $", released {Released.Count} quarantine(s) ({string.Join(", ", Released)})" : "")}{(PinsRemoved ? ", removed the pins" : "")}: no Guard program, link or pin is left"
            : $"{Remaining.Count} Guard program(s) still loaded: {string.Join(", ", Remaining.Select(p => p.Name))}",
        OrderedBy = "cli",
        OrderedByUid = Libc.PersonUid(),
        Pids = Signalled,
        TimeNs = Libc.NowNs(Libc.ClockBoottime),
        Sequence = 1,
    };
}

/// <summary>
/// The emergency off switch: every process that holds a Guard program is
/// asked to stop (SIGTERM through a pidfd: a sensor then detaches everything
/// it attached), held jobs are released (thawed, continued: nothing stays
/// stopped with no Guard state to explain it), pins are removed, and what is
/// left, if anything, is named.
/// </summary>
public static class EmergencyDetach
{
    private const int SigTerm = 15;

    /// <summary>The processes, other than this one, that hold a Guard program open: the running sensors.</summary>
    public static IReadOnlyList<int> Holders() =>
        [.. GuardProgramsLoaded.List().SelectMany(p => p.HolderPids).Distinct().Where(pid => pid != Environment.ProcessId).Order()];

    /// <summary>
    /// Switches Guard off, waiting up to <paramref name="wait"/> in all for the
    /// sensors to exit and the kernel to free their programs.
    /// </summary>
    public static DetachOutcome Run(TimeSpan wait)
    {
        var signalled = new List<Pidfd>();
        foreach (int pid in Holders())
        {
            if (!ProcfsReader.TryReadStat(pid, out ProcfsStat stat) || ProcessKiller.Refusal(stat, null, Environment.ProcessId) is not null)
                continue;
            Pidfd? handle = Pidfd.TryOpen(pid, out _);
            if (handle is not null && ProcfsReader.TryReadStat(pid, out ProcfsStat again) && again.StartTicks == stat.StartTicks && handle.Signal(SigTerm) == 0)
                signalled.Add(handle);
            else
                handle?.Dispose();
        }
        DateTime deadline = DateTime.UtcNow + wait;
        // Pins go only once the sensors are gone: a sensor on its way out hands
        // its enforcement over (pinned), and that must go too.
        foreach (Pidfd sensor in signalled)
        {
            sensor.WaitExit(Math.Max(0, (int)(deadline - DateTime.UtcNow).TotalMilliseconds));
            sensor.Dispose();
        }
        var released = new List<string>();
        if (QuarantineKernel.Pinned)
        {
            var quarantines = new Quarantines(KernelMounts.FindCgroup2Root());
            quarantines.Prune();
            foreach (QuarantineHold held in quarantines.List())
            {
                quarantines.Release(held, "detach-all");
                released.Add(held.Name);
            }
        }
        bool pins = false;
        if (Directory.Exists(Pins.Root))
        {
            Pins.Remove(Pins.Root);
            pins = true;
        }
        // The kernel frees detached programs a moment later.
        IReadOnlyList<LoadedProgram> remaining;
        while ((remaining = [.. GuardProgramsLoaded.List().Where(p => !p.HolderPids.Contains(Environment.ProcessId))]).Count > 0 && DateTime.UtcNow < deadline)
            Thread.Sleep(100);
        return new DetachOutcome([.. signalled.Select(p => p.Pid)], released, remaining, pins);
    }
}
