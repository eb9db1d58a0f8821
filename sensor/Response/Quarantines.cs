using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// Holds jobs for a person. A job with its own cgroup is frozen
/// (cgroup.freeze) and the deny programs are attached to that cgroup
/// (<see cref="CgroupHolds"/>); a tree without one is stopped with SIGSTOP and
/// its members are held in the kernel, which also holds and stops any child
/// they fork (<see cref="TreeHolds"/>). Either way its network (new sockets,
/// connects, sends, packets of sockets it had) and its GPU device opens are
/// denied. Nothing is ever moved out of its cgroup; a cgroup hold's member
/// that someone else moves out stays held, stopped where it went. The state lives in pinned
/// maps, so any guard process (a later `guard watch`, the CLI) can list,
/// release, kill or expire a hold. Listing only reads; <see cref="Prune"/>
/// ends the holds whose processes are all gone.
/// </summary>
public sealed class Quarantines
{
    private const string ReleaseAction = "release";
    private const string KillAction = "kill-quarantined";

    /// <summary>How long a kill waits for the members to be gone before it removes the hold.</summary>
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(2);

    private readonly TreeHolds trees;
    private readonly CgroupHolds cgroups;

    /// <summary>Holds on the cgroup2 hierarchy mounted at <paramref name="cgroupRoot"/> (usually /sys/fs/cgroup).</summary>
    public Quarantines(string cgroupRoot)
    {
        var cgroupfs = new Cgroupfs(cgroupRoot);
        trees = new TreeHolds(cgroupfs);
        cgroups = new CgroupHolds(cgroupfs);
    }

    /// <inheritdoc cref="TreeHolds.Hold(ProcessTarget, QuarantineRequest)"/>
    public QuarantineOutcome HoldTree(ProcessTarget target, QuarantineRequest request) => trees.Hold(target, request);

    /// <inheritdoc cref="CgroupHolds.Hold(string, QuarantineRequest)"/>
    public QuarantineOutcome HoldJob(string jobId, QuarantineRequest request) => cgroups.Hold(jobId, request);

    /// <inheritdoc cref="CgroupHolds.Hold(Job, QuarantineRequest)"/>
    public QuarantineOutcome HoldJob(Job job, QuarantineRequest request) => cgroups.Hold(job, request);

    /// <summary>
    /// Every hold that still has a live member, with its members. Only reads: a
    /// hold whose processes are all gone is left out here and ended by <see cref="Prune"/>.
    /// Throws <see cref="SensorException"/> when the pinned maps cannot be opened.
    /// </summary>
    public IReadOnlyList<QuarantineHold> List()
    {
        using QuarantineKernel? kernel = QuarantineKernel.OpenPinned();
        return kernel is null ? [] : [.. ReadAll(kernel).Where(h => h.Pids.Count > 0)];
    }

    /// <summary>The hold that has <paramref name="pid"/> among its live members, if any. Only reads.</summary>
    public QuarantineHold? Holding(int pid) => List().FirstOrDefault(h => h.Pids.Contains(pid));

    /// <summary>
    /// Ends the holds whose processes are all gone (record, tgids and links
    /// removed; an emptied cgroup thawed), then removes the pins no hold needs:
    /// the tree programs with no tree hold left, every pin with no hold left.
    /// Returns the holds it ended. Throws <see cref="SensorException"/> when the
    /// pinned maps cannot be opened or a cgroup.freeze cannot be written.
    /// </summary>
    public IReadOnlyList<QuarantineHold> Prune()
    {
        using QuarantineKernel? kernel = QuarantineKernel.OpenPinned();
        return kernel is null ? [] : Prune(kernel, ReadAll(kernel)).Ended;
    }

    /// <summary>
    /// Undoes a hold exactly: deny programs off, then the processes thawed or
    /// continued. Throws <see cref="SensorException"/> when nothing is pinned or
    /// cgroup.freeze cannot be written.
    /// </summary>
    public QuarantineOutcome Release(QuarantineHold hold, string orderedBy = "cli", uint? orderedByUid = null)
    {
        uint uid = orderedByUid ?? Libc.PersonUid();
        using QuarantineKernel kernel = QuarantineKernel.OpenPinned() ?? throw new SensorException("nothing is quarantined");
        List<int> resumed = End(kernel, hold);
        kernel.RemoveUnneededPins();
        return new QuarantineOutcome(ReleaseAction, true, $"released {hold.Name}: {resumed.Count} process{(resumed.Count == 1 ? "" : "es")} running again, network and GPU allowed", resumed, hold.CgroupPath, orderedBy, uid);
    }

    /// <summary>
    /// Ends a hold by killing every member (a cgroup through cgroup.kill),
    /// waits up to 2 s for them to be gone, then removes what held them. Throws
    /// <see cref="SensorException"/> when nothing is pinned or a cgroup file cannot be written.
    /// </summary>
    public QuarantineOutcome Kill(QuarantineHold hold, string orderedBy = "cli", uint? orderedByUid = null)
    {
        uint uid = orderedByUid ?? Libc.PersonUid();
        using QuarantineKernel kernel = QuarantineKernel.OpenPinned() ?? throw new SensorException("nothing is quarantined");
        List<int> killed = hold.Mode == QuarantineMode.Cgroup ? cgroups.Kill(kernel, hold) : TreeHolds.Kill(kernel, hold.Id);
        WaitGone(kernel, hold, KillWait);
        End(kernel, hold, resume: false);
        kernel.RemoveUnneededPins();
        return new QuarantineOutcome(KillAction, killed.Count > 0, $"killed {hold.Name}: {killed.Count} process{(killed.Count == 1 ? "" : "es")}", killed, hold.CgroupPath, orderedBy, uid);
    }

    /// <summary>
    /// Prunes (as <see cref="Prune"/>), then kills or releases the holds whose
    /// deadline is at or before <paramref name="now"/>, earliest first, as each
    /// asked, ordered by "timeout of" whoever made it. A hold that cannot be
    /// ended (a kernel without cgroup.kill, a cgroup file that will not take the
    /// write) is a refused outcome and the others are ended still; it is tried
    /// again at the next call. Throws <see cref="SensorException"/> only when the
    /// pinned maps cannot be opened or pruning fails.
    /// </summary>
    public IReadOnlyList<QuarantineOutcome> Expire(DateTimeOffset now)
    {
        List<QuarantineHold> live;
        using (QuarantineKernel? kernel = QuarantineKernel.OpenPinned())
        {
            if (kernel is null)
                return [];
            live = Prune(kernel, ReadAll(kernel)).Live;
        }
        var outcomes = new List<QuarantineOutcome>();
        foreach (QuarantineHold hold in live.Where(h => h.Deadline <= now).OrderBy(h => h.Deadline))
        {
            string by = $"timeout of {hold.OrderedBy}";
            bool kill = hold.OnTimeout == QuarantineExpiry.Kill;
            try
            {
                outcomes.Add(kill ? Kill(hold, by, hold.OrderedByUid) : Release(hold, by, hold.OrderedByUid));
            }
            catch (Exception e) when (e is SensorException or IOException or UnauthorizedAccessException)
            {
                // One hold that cannot be ended must not keep the others in force past their time.
                outcomes.Add(QuarantineOutcome.Refused(kill ? KillAction : ReleaseAction, $"{hold.Name} is still held: {e.Message}", by, hold.OrderedByUid) with { CgroupPath = hold.CgroupPath });
            }
        }
        return outcomes;
    }

    /// <summary>
    /// Whether a pinned hold's deadline is at or before <paramref name="now"/>:
    /// one walk of the records map, nothing read from /proc or cgroupfs, so a
    /// running sensor can ask often and end a hold on time (<see cref="Expire"/> does the work).
    /// </summary>
    public static bool AnyDue(DateTimeOffset now)
    {
        using QuarantineKernel? kernel = QuarantineKernel.OpenPinned();
        ulong nowNs = (ulong)now.ToUnixTimeMilliseconds() * 1_000_000;
        return kernel is not null && kernel.Records().Any(r => r.Record.DeadlineNs != 0 && r.Record.DeadlineNs <= nowNs);
    }

    /// <summary>Every pinned hold, live or not, with its members read now.</summary>
    private List<QuarantineHold> ReadAll(QuarantineKernel kernel) =>
        [.. kernel.Records().Select(r => ReadHold(kernel, r.Id, r.Record))];

    /// <summary>
    /// One hold from its pinned record and what the kernel, /proc and cgroupfs say
    /// of its members now: which can run, whether its cgroup is frozen, what tried
    /// to let it run.
    /// </summary>
    private QuarantineHold ReadHold(QuarantineKernel kernel, ulong id, in GuardQuarantine record)
    {
        var counts = kernel.Continues().Where(c => c.Key.HoldId == id).ToList();
        var continues = counts.Where(c => c.Key.Via != ContinueVia.CgroupMove).Select(c => c.Value).ToList();
        GuardContinue? latest = counts.Count == 0 ? null : counts.Select(c => c.Value).MaxBy(c => c.LastNs);
        QuarantineHold hold;
        if (record.Mode == QuarantineMode.Tree)
        {
            List<int> members = TreeHolds.Members(kernel, id);
            hold = QuarantineHold.From(id, record, null, members) with { Running = [.. members.Where(pid => !ProcfsReader.AllThreadsStopped(pid))] };
        }
        else
        {
            (string? path, List<int> inside, List<MemberOutside> outside) = cgroups.Members(kernel, id);
            hold = QuarantineHold.From(id, record, path, [.. inside.Concat(outside.Select(m => m.Pid)).Order()]) with
            {
                Frozen = path is null ? null : cgroups.Frozen(path),
                Inside = inside,
                Outside = outside,
                Running = [.. outside.Where(m => !m.Stopped).Select(m => m.Pid)],
            };
        }
        return hold with
        {
            ContinuesRefused = continues.Aggregate(0UL, (sum, c) => sum + c.Refused),
            ContinuesUnanswered = counts.Aggregate(0UL, (sum, c) => sum + c.Value.Unanswered),
            MovesOut = counts.Where(c => c.Key.Via == ContinueVia.CgroupMove).Aggregate(0UL, (sum, c) => sum + c.Value.Attempts),
            LastContinuedBy = latest is { } l ? ((int)l.SenderTgid, Printable.Of(Comm.Text(l.SenderComm))) : null,
        };
    }

    /// <summary>Ends the holds of <paramref name="holds"/> with no live member, then the pins no hold needs.</summary>
    private (List<QuarantineHold> Live, List<QuarantineHold> Ended) Prune(QuarantineKernel kernel, List<QuarantineHold> holds)
    {
        var live = new List<QuarantineHold>();
        var ended = new List<QuarantineHold>();
        foreach (QuarantineHold hold in holds)
        {
            if (hold.Pids.Count == 0)
            {
                End(kernel, hold);
                ended.Add(hold);
            }
            else
            {
                live.Add(hold);
            }
        }
        kernel.RemoveUnneededPins();
        return (live, ended);
    }

    /// <summary>
    /// Removes a hold's kernel state and resumes its processes unless they are
    /// being killed. A tree hold's record goes first (from then on the kernel
    /// denies none of its members); a cgroup hold's once its programs are off
    /// and its cgroup thawed, so a thaw that fails leaves a hold that is still
    /// listed and ended again, never a frozen cgroup nothing explains; then its
    /// members let go, and those the kernel stopped when they were moved out
    /// (wherever they are now) continued.
    /// </summary>
    private List<int> End(QuarantineKernel kernel, QuarantineHold hold, bool resume = true)
    {
        if (hold.Mode == QuarantineMode.Tree)
        {
            kernel.Remove(hold.Id);
            return TreeHolds.End(kernel, hold.Id, resume);
        }
        List<int> thawed = cgroups.End(hold);
        HashSet<int> stoppedOutside = [.. hold.Outside.Select(m => m.Pid),
            .. kernel.Continues().Where(c => c.Key.HoldId == hold.Id && c.Key.Via == ContinueVia.CgroupMove).Select(c => (int)c.Key.Tgid)];
        kernel.Remove(hold.Id);
        List<int> resumed = TreeHolds.End(kernel, hold.Id, pid => resume && stoppedOutside.Contains(pid));
        return [.. thawed.Union(resumed).Order()];
    }

    private void WaitGone(QuarantineKernel kernel, QuarantineHold hold, TimeSpan wait)
    {
        DateTime deadline = DateTime.UtcNow + wait;
        while (DateTime.UtcNow < deadline && Reread(kernel, hold) is { Pids.Count: > 0 })
            Thread.Sleep(10);
    }

    /// <summary>The same hold as the kernel has it now; null once its record is gone.</summary>
    private QuarantineHold? Reread(QuarantineKernel kernel, QuarantineHold hold) =>
        kernel.Records().Where(r => r.Id == hold.Id).Select(r => ReadHold(kernel, r.Id, r.Record)).FirstOrDefault();
}
