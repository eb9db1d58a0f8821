using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// Holds for a job with its own cgroup: the cgroup-mode deny programs
/// attached to that cgroup (network and GPU devices, for everything in it),
/// then the cgroup frozen through cgroup.freeze. The hold's id is the cgroup
/// id; nothing is ever moved out of the cgroup. Its members are held as
/// processes too (quarantine_tgids, as a tree hold's): the hold follows a
/// member someone moves out, which the kernel stops where it went, and a
/// process forked or moved into the cgroup is a member from then on.
/// </summary>
internal sealed class CgroupHolds
{
    /// <summary>How long a new hold waits for its freeze to settle before it reports "freezing".</summary>
    private static readonly TimeSpan FreezeWait = TimeSpan.FromSeconds(2);

    private readonly Cgroupfs cgroupfs;

    /// <summary>Cgroup holds on the hierarchy of <paramref name="cgroupfs"/>.</summary>
    public CgroupHolds(Cgroupfs cgroupfs) => this.cgroupfs = cgroupfs;

    /// <summary>Holds the job <paramref name="jobId"/> (as events name it: slurm:42) through its outermost cgroup; refused when no cgroup names it.</summary>
    public QuarantineOutcome Hold(string jobId, QuarantineRequest request)
    {
        string? path = cgroupfs.FindJob(jobId);
        return path is null
            ? QuarantineOutcome.HoldRefused(request, $"no cgroup under {cgroupfs.Root} belongs to job {jobId}")
            : Hold(new Job(jobId, "", path), request);
    }

    /// <summary>
    /// Holds <paramref name="job"/> through its own cgroup: deny programs first,
    /// so nothing leaves while the freeze settles. Refuses (no state left) a
    /// cgroup that holds this guard process, has no freezer or no process, or
    /// is held already. Throws <see cref="SensorException"/> when the kernel
    /// will not load or attach, or cgroup.freeze cannot be written.
    /// </summary>
    public QuarantineOutcome Hold(Job job, QuarantineRequest request)
    {
        if (ProcessKiller.JobRefusal(job) is { } refusal)
            return QuarantineOutcome.HoldRefused(request, refusal);
        string freeze = cgroupfs.FileOf(job.CgroupPath, Cgroupfs.FreezeFile);
        if (!File.Exists(freeze))
            return QuarantineOutcome.HoldRefused(request, $"{freeze} does not exist (the cgroup v2 freezer needs Linux 5.2)");
        if (cgroupfs.Processes(job.CgroupPath).Count == 0)
            return QuarantineOutcome.HoldRefused(request, $"job {job.Id} ({job.CgroupPath}) has no processes");
        ulong id = cgroupfs.IdOf(job.CgroupPath) ?? 0;
        using QuarantineKernel? kernel = Begin(job, id, request);
        if (kernel is null)
            return QuarantineOutcome.HoldRefused(request, $"job {job.Id} is held already");
        // Deny first: nothing leaves while the freeze settles.
        kernel.AttachToCgroup(id, cgroupfs.DirectoryOf(job.CgroupPath));
        // Members before the freeze: from here a member moved out is stopped by the kernel where it goes.
        HoldMembers(kernel, job.CgroupPath, id);
        cgroupfs.Freeze(job.CgroupPath);
        bool frozen = cgroupfs.WaitFrozen(job.CgroupPath, FreezeWait);
        int[] pids = [.. cgroupfs.Processes(job.CgroupPath)];
        HoldMembers(kernel, job.CgroupPath, id);
        // Moved out between the listing and its entry: the kernel did not know it yet.
        int stopped = 0;
        foreach (MemberOutside left in Outside(kernel, job.CgroupPath, id, pids).Where(m => !m.Stopped))
        {
            using Pidfd? member = TreeHolds.OpenMember(kernel, id, left.Pid, left.StartTicks);
            if (member?.Signal(StoppedTree.SigStop) == 0)
                stopped++;
        }
        int sockets = HeldSockets.MarkAll(kernel, pids, id);
        return new QuarantineOutcome(QuarantineOutcome.HoldAction, true,
            $"quarantined job {job.Id}: cgroup {job.CgroupPath} {(frozen ? "frozen" : "freezing (not settled after 2 s)")}, {pids.Length} process{(pids.Length == 1 ? "" : "es")}; network ({sockets} open socket{(sockets == 1 ? "" : "s")}) and GPU devices denied"
            + (stopped > 0 ? $"; {stopped} moved out meanwhile, stopped where {(stopped == 1 ? "it" : "they")} went" : ""),
            pids, job.CgroupPath, request.OrderedBy, request.OrderedByUid);
    }

    /// <summary>
    /// Holds every process in the cgroup (and below) as a member of hold
    /// <paramref name="id"/>, by tgid and start, unless another live hold holds it.
    /// A pid that left between the listing and its stat is skipped. Throws
    /// <see cref="SensorException"/> when the map refuses an entry.
    /// </summary>
    private void HoldMembers(QuarantineKernel kernel, string cgroupPath, ulong id)
    {
        HashSet<ulong> holds = [.. kernel.Records().Select(r => r.Id)];
        foreach (int pid in cgroupfs.Processes(cgroupPath))
        {
            if (!ProcfsReader.TryReadStat(pid, out ProcfsStat stat))
                continue;
            if (kernel.IsHeld(pid, stat.StartTicks, out ulong other) && (other == id || holds.Contains(other)))
                continue;
            if (ProcfsReader.TryReadCgroupPath(pid) is { } now && Within(now, cgroupPath))
                kernel.HoldTgid(pid, stat.StartTicks, id);
        }
    }

    /// <summary>Whether cgroup <paramref name="path"/> is <paramref name="held"/> or below it.</summary>
    internal static bool Within(string path, string held) =>
        path == held || held == "/" || (path.StartsWith(held, StringComparison.Ordinal) && path.Length > held.Length && path[held.Length] == '/');

    /// <summary>
    /// The live members of hold <paramref name="id"/> that are not in its cgroup
    /// <paramref name="cgroupPath"/> (null: gone) nor among <paramref name="inside"/>,
    /// with where each is now and whether all its threads are stopped.
    /// </summary>
    private static List<MemberOutside> Outside(QuarantineKernel kernel, string? cgroupPath, ulong id, IReadOnlyCollection<int> inside)
    {
        var outside = new List<MemberOutside>();
        foreach ((int pid, long startTicks) in kernel.HeldBy(id))
        {
            if (inside.Contains(pid) || !ProcfsReader.IsRunning(pid, startTicks))
                continue;
            string? now = ProcfsReader.TryReadCgroupPath(pid);
            if (now is null || (cgroupPath is not null && Within(now, cgroupPath)))
                continue;
            outside.Add(new MemberOutside(pid, startTicks, now, ProcfsReader.AllThreadsStopped(pid)));
        }
        outside.Sort((a, b) => a.Pid.CompareTo(b.Pid));
        return outside;
    }

    /// <summary>
    /// Loads the programs and writes the hold under the lock every guard takes to
    /// add or remove quarantine pins (a pruning sensor sees all of it or none);
    /// null, writing nothing, when the cgroup is held already. A socket belongs to
    /// the cgroup that made it: one made outside and passed in, or kept by a
    /// process moved in, is seen only by the root programs, which drop what is
    /// marked and mark what a sender in this cgroup uses, so those attach too.
    /// </summary>
    private QuarantineKernel? Begin(Job job, ulong id, QuarantineRequest request)
    {
        using FileDescriptor pinsLock = QuarantineKernel.LockPins();
        QuarantineKernel kernel = QuarantineKernel.Load();
        try
        {
            if (kernel.Records().Any(r => r.Id == id))
            {
                kernel.Dispose();
                return null;
            }
            foreach (GpuDevice device in request.GpuDevices)
                kernel.DenyDevice(device);
            kernel.AddCgroupLevel(Cgroupfs.LevelOf(job.CgroupPath));
            kernel.EnsureTreeLinks(cgroupfs.Root);
            kernel.Put(id, request.ToRecord(QuarantineMode.Cgroup, id, 0, 0, job.Id));
            return kernel;
        }
        catch
        {
            kernel.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The cgroup of hold <paramref name="id"/> (found by walking the hierarchy), the
    /// processes in it and below, and the members that are elsewhere now (moved out);
    /// (null, none, those elsewhere) when the cgroup is gone.
    /// </summary>
    public (string? CgroupPath, List<int> Inside, List<MemberOutside> Outside) Members(QuarantineKernel kernel, ulong id)
    {
        string? path = cgroupfs.FindById(id);
        List<int> inside = path is null ? [] : cgroupfs.Processes(path);
        return (path, inside, Outside(kernel, path, id, inside));
    }

    /// <summary>What the cgroup's cgroup.events says now: frozen or not; null when it is gone.</summary>
    public bool? Frozen(string cgroupPath) => cgroupfs.IsFrozen(cgroupPath);

    /// <summary>
    /// Kills the held cgroup through cgroup.kill, and each member that was moved
    /// out through its pidfd; returns the processes the hold listed inside and the
    /// members signalled outside (the kernel reports no count for cgroup.kill).
    /// Throws <see cref="SensorException"/> when cgroup.kill cannot be written
    /// (it needs Linux 5.14).
    /// </summary>
    public List<int> Kill(QuarantineKernel kernel, QuarantineHold hold)
    {
        var killed = new List<int>();
        if (hold.CgroupPath is { } path)
        {
            cgroupfs.Kill(path);
            killed.AddRange(hold.Inside);
        }
        killed.AddRange(TreeHolds.Kill(kernel, hold.Id).Where(pid => !killed.Contains(pid)));
        return killed;
    }

    /// <summary>
    /// Detaches the hold's deny programs, then thaws its cgroup if it is still
    /// there (the caller removes the record after); returns the members the hold
    /// listed inside when it thawed, none when the cgroup is gone. Throws
    /// <see cref="SensorException"/> when cgroup.freeze cannot be written.
    /// </summary>
    public List<int> End(QuarantineHold hold)
    {
        QuarantineKernel.DetachFromCgroup(hold.Id);
        return hold.CgroupPath is { } path && cgroupfs.Thaw(path) ? [.. hold.Inside] : [];
    }
}

/// <summary>A member of a cgroup hold that is not in the held cgroup now: someone moved it out.</summary>
/// <param name="Pid">The member.</param>
/// <param name="StartTicks">Its start in clock ticks (/proc/PID/stat field 22).</param>
/// <param name="CgroupPath">Where it is now, relative to the cgroup2 mount.</param>
/// <param name="Stopped">Whether every thread of it is stopped, as /proc/PID/task/*/stat said when read.</param>
public sealed record MemberOutside(int Pid, long StartTicks, string CgroupPath, bool Stopped);
