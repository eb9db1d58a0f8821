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
/// id; nothing is ever moved out of the cgroup.
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
        cgroupfs.Freeze(job.CgroupPath);
        bool frozen = cgroupfs.WaitFrozen(job.CgroupPath, FreezeWait);
        int[] pids = [.. cgroupfs.Processes(job.CgroupPath)];
        int sockets = HeldSockets.MarkAll(kernel, pids, id);
        return new QuarantineOutcome(QuarantineOutcome.HoldAction, true,
            $"quarantined job {job.Id}: cgroup {job.CgroupPath} {(frozen ? "frozen" : "freezing (not settled after 2 s)")}, {pids.Length} process{(pids.Length == 1 ? "" : "es")}; network ({sockets} open socket{(sockets == 1 ? "" : "s")}) and GPU devices denied",
            pids, job.CgroupPath, request.OrderedBy, request.OrderedByUid);
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

    /// <summary>The cgroup of hold <paramref name="id"/> (found by walking the hierarchy) and its processes; (null, none) when the cgroup is gone.</summary>
    public (string? CgroupPath, List<int> Pids) Members(ulong id)
    {
        string? path = cgroupfs.FindById(id);
        return (path, path is null ? [] : cgroupfs.Processes(path));
    }

    /// <summary>What the cgroup's cgroup.events says now: frozen or not; null when it is gone.</summary>
    public bool? Frozen(string cgroupPath) => cgroupfs.IsFrozen(cgroupPath);

    /// <summary>
    /// Kills the held cgroup through cgroup.kill; returns the members the hold
    /// listed (the kernel reports no count). Throws <see cref="SensorException"/>
    /// when cgroup.kill cannot be written (it needs Linux 5.14).
    /// </summary>
    public List<int> Kill(QuarantineHold hold)
    {
        if (hold.CgroupPath is not { } path)
            return [];
        cgroupfs.Kill(path);
        return [.. hold.Pids];
    }

    /// <summary>
    /// Detaches the hold's deny programs, then thaws its cgroup if it is still
    /// there (the caller removes the record after); returns the members the hold
    /// listed when it thawed, none when the cgroup is gone. Throws
    /// <see cref="SensorException"/> when cgroup.freeze cannot be written.
    /// </summary>
    public List<int> End(QuarantineHold hold)
    {
        QuarantineKernel.DetachFromCgroup(hold.Id);
        return hold.CgroupPath is { } path && cgroupfs.Thaw(path) ? [.. hold.Pids] : [];
    }
}
