using System.Globalization;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// The user-space half of a hold that holds, for a watching sensor to run a
/// few times a second while holds are pinned. The kernel answers first: it
/// stops a held process sent SIGCONT, kills one its tracer resumes, stops one
/// that issues a GPU ioctl, stops a member of a cgroup hold moved out of the
/// held cgroup, and counts each, every way apart (quarantine_continues,
/// held_gpu_ioctls). Here each count that grew becomes a report; a held
/// process that can still run (the kernel's stop could not be queued) is
/// stopped through its pidfd; the sockets it has now are marked, so one it was
/// passed while it ran sends nothing. A held cgroup someone thawed
/// (cgroup.freeze 0) is frozen again and its sockets marked.
/// </summary>
public sealed class HoldBreaches
{
    /// <summary>The event.action of a refused attempt to let a held process run.</summary>
    public const string ContinueRefusedAction = "quarantine-continue-refused";

    /// <summary>The event.action of a held cgroup frozen again after someone thawed it.</summary>
    public const string ThawRefusedAction = "quarantine-thaw-refused";

    /// <summary>The event.action of a member of a cgroup hold moved out of the held cgroup and stopped where it went.</summary>
    public const string MoveRefusedAction = "quarantine-move-refused";

    private readonly Cgroupfs cgroupfs;
    private readonly Dictionary<(ulong Hold, uint Tgid, ulong Start, ContinueVia Via), ulong> reported = [];
    private readonly Dictionary<ulong, string?> cgroupPaths = [];

    /// <summary>Breaches of holds on the cgroup2 hierarchy mounted at <paramref name="cgroupRoot"/>.</summary>
    public HoldBreaches(string cgroupRoot) => cgroupfs = new Cgroupfs(cgroupRoot);

    /// <summary>
    /// Reads what the kernel counted since the last call (and <paramref name="gpuIoctls"/>,
    /// guard.bpf.c's count of GPU ioctls by held processes), answers what is left to
    /// answer, and returns one report per held process or cgroup that saw attempts. Counts
    /// seen for the first time are reported whole: they happened while no sensor ran.
    /// Throws <see cref="SensorException"/> when a thawed cgroup cannot be frozen again.
    /// </summary>
    public List<HoldBreach> Check(QuarantineKernel kernel, IReadOnlyList<(GuardContinueKey Key, GuardContinue Value)> gpuIoctls)
    {
        Dictionary<ulong, GuardQuarantine> records = kernel.Records().ToDictionary(r => r.Id, r => r.Record);
        var breaches = new List<HoldBreach>();
        foreach ((GuardContinueKey key, GuardContinue value, ulong growth) in Grown(kernel.Continues().Concat(gpuIoctls), records.ContainsKey))
        {
            HoldBreach breach = Answer(kernel, key, value, growth, Name(records[key.HoldId]));
            if (key.Via == ContinueVia.CgroupMove)
            {
                breach = breach with
                {
                    CgroupPath = CgroupPath(key.HoldId),
                    MovedTo = ProcfsReader.ReadCgroupPath($"/proc/{breach.Pid.ToString(CultureInfo.InvariantCulture)}"),
                };
            }
            breaches.Add(breach);
        }
        foreach ((ulong id, GuardQuarantine record) in records.Where(r => r.Value.Mode == QuarantineMode.Cgroup))
        {
            if (RefreezeIfThawed(kernel, id, Name(record)) is { } breach)
                breaches.Add(breach);
        }
        foreach (ulong gone in cgroupPaths.Keys.Where(id => !records.ContainsKey(id)).ToList())
            cgroupPaths.Remove(gone);
        return breaches;
    }

    /// <summary>
    /// The counts that grew since the last call, each way of each process of each
    /// live hold (<paramref name="live"/>) apart, with the growth; counts seen for
    /// the first time grew from 0. Forgets what the maps no longer have (an ended
    /// hold, a process gone).
    /// </summary>
    internal List<(GuardContinueKey Key, GuardContinue Value, ulong Growth)> Grown(IEnumerable<(GuardContinueKey Key, GuardContinue Value)> counts, Func<ulong, bool> live)
    {
        var grown = new List<(GuardContinueKey, GuardContinue, ulong)>();
        var seen = new HashSet<(ulong, uint, ulong, ContinueVia)>();
        foreach ((GuardContinueKey key, GuardContinue value) in counts)
        {
            if (!live(key.HoldId))
                continue;
            var identity = (key.HoldId, key.Tgid, value.StartTicks, key.Via);
            seen.Add(identity);
            ulong before = reported.GetValueOrDefault(identity);
            if (value.Attempts <= before)
                continue;
            reported[identity] = value.Attempts;
            grown.Add((key, value, value.Attempts - before));
        }
        foreach (var stale in reported.Keys.Where(k => !seen.Contains(k)).ToList())
            reported.Remove(stale);
        return grown;
    }

    /// <summary>Stops (or, after a ptrace resume, kills) through its pidfd a held process the kernel could not stop, and marks its sockets.</summary>
    private static HoldBreach Answer(QuarantineKernel kernel, GuardContinueKey key, GuardContinue value, ulong count, string hold)
    {
        int pid = (int)key.Tgid;
        long startTicks = (long)value.StartTicks;
        ulong unanswered = value.Unanswered;
        var attempt = new HoldAttempt(Via(key.Via), count, unanswered, (int)value.SenderTgid, Printable.Of(Comm.Text(value.SenderComm)),
            key.Via == ContinueVia.Signal ? value.SiCode : null);
        using Pidfd? member = TreeHolds.OpenMember(kernel, key.HoldId, pid, startTicks);
        if (member is null)
            return new HoldBreach(hold, key.HoldId, pid, startTicks, attempt, Held: true, key.Via == ContinueVia.Ptrace ? "killed in the kernel" : "it has exited", 0, null);
        string done;
        if (ProcfsReader.AllThreadsStopped(pid))
        {
            done = key.Via == ContinueVia.Ptrace ? "killed in the kernel" : "stopped again in the kernel";
        }
        else
        {
            int signal = key.Via == ContinueVia.Ptrace ? StoppedTree.SigKill : StoppedTree.SigStop;
            bool sent = member.Signal(signal) == 0;
            // A release between the check and the signal must not leave it stopped: it lets go of
            // its members before it continues them, so one not held now was released.
            if (sent && signal == StoppedTree.SigStop && !StillHeld(kernel, key.HoldId, pid, startTicks))
            {
                member.Signal(StoppedTree.SigCont);
                return new HoldBreach(hold, key.HoldId, pid, startTicks, attempt, Held: false, "released meanwhile", 0, null);
            }
            done = !sent ? "could not be signalled" : signal == StoppedTree.SigKill ? "killed through its pidfd" : "stopped again through its pidfd";
        }
        int sockets = HeldSockets.Mark(kernel, member, key.HoldId);
        return new HoldBreach(hold, key.HoldId, pid, startTicks, attempt, Held: !done.StartsWith("could not", StringComparison.Ordinal), done, sockets, null);
    }

    private static bool StillHeld(QuarantineKernel kernel, ulong id, int pid, long startTicks) =>
        kernel.IsHeld(pid, startTicks, out ulong holder) && holder == id && kernel.Records().Any(r => r.Id == id);

    /// <summary>
    /// A held cgroup whose cgroup.freeze reads 0 is frozen again and its
    /// sockets marked; null when it is frozen, gone, or being released (a
    /// release detaches the hold's programs before it thaws: a cgroup thawed with
    /// them gone is the release's, and is thawed back).
    /// </summary>
    private HoldBreach? RefreezeIfThawed(QuarantineKernel kernel, ulong id, string hold)
    {
        string? path = CgroupPath(id);
        if (path is null || !cgroupfs.ThawAsked(path) || !QuarantineKernel.CgroupLinksPinned(id))
            return null;
        cgroupfs.Freeze(path);
        if (!QuarantineKernel.CgroupLinksPinned(id) || !kernel.Records().Any(r => r.Id == id))
        {
            cgroupfs.Thaw(path);
            return null;
        }
        List<int> pids = cgroupfs.Processes(path);
        int sockets = HeldSockets.MarkAll(kernel, pids, id);
        var attempt = new HoldAttempt("cgroup-thaw", 1, 1, 0, "", null);
        return new HoldBreach(hold, id, 0, 0, attempt, Held: true, "frozen again", sockets, path) { Pids = pids };
    }

    /// <summary>The held cgroup's path, found once per hold (a walk of the hierarchy); null once it is gone.</summary>
    private string? CgroupPath(ulong id)
    {
        if (cgroupPaths.TryGetValue(id, out string? path) && path is not null && cgroupfs.IdOf(path) == id)
            return path;
        return cgroupPaths[id] = cgroupfs.FindById(id);
    }

    private static string Name(in GuardQuarantine record)
    {
        ReadOnlySpan<byte> job = record.Job;
        int end = job.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? job : job[..end]);
    }

    private static string Via(ContinueVia via) => via switch
    {
        ContinueVia.Signal => "signal",
        ContinueVia.GpuIoctl => "gpu-ioctl",
        ContinueVia.Ptrace => "ptrace",
        ContinueVia.CgroupMove => "cgroup-move",
        _ => ((uint)via).ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// One report of attempts to let a held process (or cgroup) run, and what was done.
/// </summary>
/// <param name="Hold">The hold's name (tree:PID(comm), or the job id).</param>
/// <param name="HoldId">The hold's key.</param>
/// <param name="Pid">The held process; 0 for a cgroup.</param>
/// <param name="StartTicks">Its start in clock ticks; 0 for a cgroup.</param>
/// <param name="Attempt">What tried, how and how often.</param>
/// <param name="Held">Whether it is held (stopped, frozen, or gone) after the answer.</param>
/// <param name="Done">What was done, in words: "stopped again in the kernel", "stopped again through its pidfd", "killed in the kernel", "frozen again", ...</param>
/// <param name="SocketsMarked">Sockets it holds now that were not marked before.</param>
/// <param name="CgroupPath">The held cgroup, for a thaw or a move out of it.</param>
public sealed record HoldBreach(string Hold, ulong HoldId, int Pid, long StartTicks, HoldAttempt Attempt, bool Held, string Done, int SocketsMarked, string? CgroupPath)
{
    /// <summary>For a move out of the held cgroup: the cgroup the member is in now (relative to the cgroup2 mount), null when unknown (it has exited).</summary>
    public string? MovedTo { get; init; }

    /// <summary>The cgroup's processes when it was frozen again; the process alone otherwise.</summary>
    public IReadOnlyList<int> Pids { get; init; } = [];

    /// <summary>The report as an ECS action event about <paramref name="process"/> (the held one, when the table knows it), stamped now (CLOCK_BOOTTIME).</summary>
    public ActionEvent ToActionEvent(ProcessEntry? process) => new()
    {
        Action = Attempt.Via switch
        {
            "cgroup-thaw" => HoldBreaches.ThawRefusedAction,
            "cgroup-move" => HoldBreaches.MoveRefusedAction,
            _ => HoldBreaches.ContinueRefusedAction,
        },
        Succeeded = Held,
        Message = Message(),
        OrderedBy = "hold",
        Pids = Pids.Count > 0 ? Pids : Pid > 0 ? [Pid] : [],
        CgroupPath = CgroupPath,
        Attempt = Attempt,
        Process = process,
        TimeNs = Libc.NowNs(Libc.ClockBoottime),
        Sequence = 1,
    };

    /// <summary>One line for a person.</summary>
    public string Message()
    {
        var text = new StringBuilder();
        if (Attempt.Via == "cgroup-thaw")
        {
            text.Append(CultureInfo.InvariantCulture, $"{Hold}: cgroup {CgroupPath} was thawed while held; {Done}");
        }
        else if (Attempt.Via == "cgroup-move")
        {
            string times = Attempt.Count == 1 ? "" : $" ({Attempt.Count} moves)";
            text.Append(CultureInfo.InvariantCulture, $"{Hold}: held process {Pid} was moved out of cgroup {CgroupPath ?? "(gone)"} into {MovedTo ?? "(unknown: it has exited)"}{times}");
            if (Attempt.ByPid > 0)
                text.Append(CultureInfo.InvariantCulture, $" by pid {Attempt.ByPid} ({Attempt.ByName})");
            text.Append("; ").Append(Done);
        }
        else
        {
            string what = Attempt.Via switch
            {
                "signal" => "continue",
                "ptrace" => "ptrace resume",
                "gpu-ioctl" => "GPU ioctl",
                _ => "attempt",
            };
            text.Append(CultureInfo.InvariantCulture, $"{Hold}: {Attempt.Count} {what}{(Attempt.Count == 1 ? "" : "s")} of held process {Pid}");
            if (Attempt.ByPid > 0 && Attempt.Via != "gpu-ioctl")
                text.Append(CultureInfo.InvariantCulture, $" by pid {Attempt.ByPid} ({Attempt.ByName})");
            text.Append("; ").Append(Done);
        }
        if (SocketsMarked > 0)
            text.Append(CultureInfo.InvariantCulture, $"; {SocketsMarked} socket{(SocketsMarked == 1 ? "" : "s")} it gained marked");
        return text.ToString();
    }
}
