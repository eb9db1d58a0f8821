using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>
/// Every process the sensor knows, keyed by pid for lookup but identified by
/// pid and start time: a pid reused by a new process gets a new entry.
/// Seeded from /proc at start, then kept by fork, exec and exit records.
/// An exited process stays findable for <see cref="ExitedRetentionNs"/> so
/// late records (a payload sent just before exit) still find their owner;
/// its children keep a reference to it for as long as they live.
/// </summary>
public sealed class ProcessTable
{
    public const long ExitedRetentionNs = 5_000_000_000;

    private readonly Dictionary<int, ProcessEntry> byPid = [];
    private readonly Queue<(long DueNs, ProcessEntry Entry)> exited = new();
    private readonly EntityIds ids;
    private readonly CgroupPaths? cgroups;
    private readonly UserNames users;
    private readonly Func<int, ulong>? kernelJobCgroup;

    /// <summary>
    /// A table naming jobs through <paramref name="cgroups"/> (none when null);
    /// <paramref name="kernelJobCgroup"/> reads the job cgroup id the kernel
    /// keeps for a pid (0: none), asked only when the kernel says an exec is
    /// in a job the table cannot name.
    /// </summary>
    public ProcessTable(EntityIds ids, CgroupPaths? cgroups, UserNames users, Func<int, ulong>? kernelJobCgroup = null)
    {
        this.ids = ids;
        this.cgroups = cgroups;
        this.users = users;
        this.kernelJobCgroup = kernelJobCgroup;
    }

    public int Count => byPid.Count;

    /// <summary>Every process known now, live or recently exited.</summary>
    public IEnumerable<ProcessEntry> Entries => byPid.Values;

    public EntityIds Ids => ids;

    /// <summary>
    /// Places every process in /proc in the tree (one read of its stat each)
    /// and links parents; returns how many. The rest (arguments, executable,
    /// user, job) is read when a process is first shown: most are never, and
    /// a host with ten thousand processes starts in a fraction of a second.
    /// </summary>
    public int SeedFromProcfs()
    {
        var seeded = new List<ProcessEntry>();
        foreach (int pid in ProcfsReader.Pids())
        {
            if (ProcfsReader.TryReadStat(pid, out ProcfsStat stat))
                seeded.Add(Add(stat));
        }
        foreach (ProcessEntry entry in seeded)
        {
            entry.Parent ??= byPid.GetValueOrDefault(entry.ParentPid);
            entry.Changed();
        }
        return seeded.Count;
    }

    /// <summary>The live (or recently exited) process with this pid; startTicks -1 accepts whichever holds it.</summary>
    public ProcessEntry? Find(int pid, long startTicks = -1)
    {
        if (!byPid.TryGetValue(pid, out ProcessEntry? entry))
            return null;
        return startTicks < 0 || entry.StartTicks == startTicks ? entry : null;
    }

    /// <summary>The owner of a record: by identity when the record has a start time, else by pid alone.</summary>
    public ProcessEntry? Owner(in RecordHeader header) => Identify((int)header.Pid, header.StartTimeNs);

    /// <summary>
    /// The process with this pid and start (CLOCK_BOOTTIME ns, as the kernel
    /// gives it; 0: whichever holds the pid), read from /proc when the table
    /// has not seen it; null when it is gone or the pid is another's now.
    /// </summary>
    public ProcessEntry? Identify(int pid, ulong startTimeNs)
    {
        if (pid == 0)
            return null;
        long ticks = startTimeNs == 0 ? -1 : ClockTicks.FromBootNs(startTimeNs);
        return Find(pid, ticks) ?? (ticks < 0 ? null : Resolve(pid, ticks));
    }

    public ProcessEntry OnFork(in ForkRecord record)
    {
        int pid = (int)record.Header.Pid;
        long ticks = ClockTicks.FromBootNs(record.Header.StartTimeNs);
        ProcessEntry? parent = Resolve((int)record.ParentPid, ClockTicks.FromBootNs(record.ParentStartTimeNs));
        if (parent is not null)
            EnsureDetails(parent); // the child inherits them
        var entry = new ProcessEntry(pid, ticks, ids.For(pid, ticks), ProcessOrigin.Fork)
        {
            Parent = parent,
            ParentPid = (int)record.ParentPid,
            Uid = record.Uid,
            UserName = users.NameOf(record.Uid),
            Name = CString(record.Comm),
            // Until it execs, a child runs its parent's image.
            Executable = parent?.Executable ?? [],
            Args = parent?.Args ?? [],
            ArgsTruncated = parent?.ArgsTruncated ?? false,
            WorkingDirectory = parent?.WorkingDirectory,
            ExecutableFile = parent?.ExecutableFile,
            ExecutableSha256 = parent?.ExecutableSha256,
            // The creator's cgroup (a clone into another cgroup does not take the child out of its job), else the parent's job.
            CgroupJob = cgroups?.JobOf(record.CgroupId) ?? parent?.CgroupJob,
            JobRootPid = parent?.JobRootPid ?? 0,
        };
        byPid[pid] = entry;
        return entry;
    }

    public ProcessEntry OnExec(in ExecRecord record)
    {
        int pid = (int)record.Header.Pid;
        long ticks = ClockTicks.FromBootNs(record.Header.StartTimeNs);
        ProcessEntry entry = Find(pid, ticks) ?? Create(pid, ticks, (int)record.Ppid, ClockTicks.FromBootNs(record.ParentStartTimeNs), ProcessOrigin.Exec);
        entry.DetailsPending = false; // exec tells all of it
        entry.Executable = record.Path[..Math.Min((int)record.PathLength, PathCapacity)].ToArray();
        // A new image: what was known of the old file's hash is not this one's.
        entry.ExecutableFile = new FileId(record.FileDevice, record.FileInode);
        entry.ExecutableSha256 = null;
        entry.ExecutableNotHashed = null;
        entry.Args = TrimTrailingNul(record.Args[..Math.Min((int)record.ArgsLength, ArgsCapacity)]);
        entry.ArgsTruncated = (record.Flags & ExecRecord.ArgsTruncated) != 0;
        entry.ExecutedFrom = entry.Name.Length > 0 ? entry.Name : null;
        entry.Name = CString(record.Comm);
        entry.Uid = record.Uid;
        entry.UserName = users.NameOf(record.Uid);
        // Its cgroup's job, else the one it had: it stays in a job whose cgroup it left, as in the kernel.
        entry.CgroupJob = cgroups?.JobOf(record.CgroupId) ?? entry.CgroupJob;
        // In a job by the kernel's word alone (it, or the parent it forked from, moved through a job's
        // cgroup without forking or exec'ing there): the job the kernel keeps is the job. The parent's
        // entry outlives a miner the kernel killed at this exec.
        if (entry.CgroupJob is null && record.JobRootPid == 0 && (record.Flags & ExecRecord.InJob) != 0 && kernelJobCgroup is not null)
        {
            ulong jobCgroup = kernelJobCgroup(pid);
            if (jobCgroup == 0 && entry.Parent is { Exited: false } parent)
                jobCgroup = kernelJobCgroup(parent.Pid);
            entry.CgroupJob = jobCgroup == 0 ? null : cgroups?.JobOf(jobCgroup);
        }
        entry.JobRootPid = (int)record.JobRootPid;
        entry.Staging = (record.Flags & ExecRecord.Memfd) != 0 ? "memfd"
            : (record.Flags & ExecRecord.Unlinked) != 0 ? "unlinked"
            : (record.Flags & ExecRecord.SharedDirectory) != 0 ? "shared-directory" : null;
        // Read while the process most likely still runs; a short-lived one keeps its parent's.
        entry.WorkingDirectory = ProcfsReader.ReadWorkingDirectory(pid) ?? entry.WorkingDirectory;
        entry.Changed();
        return entry;
    }

    public ProcessEntry? OnExit(in ExitRecord record, long nowNs)
    {
        ProcessEntry? entry = Owner(record.Header);
        if (entry is null)
            return null;
        entry.Exited = true;
        entry.ExitStatus = record.ExitCode;
        exited.Enqueue((nowNs + ExitedRetentionNs, entry));
        return entry;
    }

    /// <summary>Forgets exited processes whose retention has passed.</summary>
    public void Expire(long nowNs)
    {
        while (exited.TryPeek(out (long DueNs, ProcessEntry Entry) next) && next.DueNs <= nowNs)
        {
            exited.Dequeue();
            // The pid may already belong to a newer process.
            if (byPid.TryGetValue(next.Entry.Pid, out ProcessEntry? current) && ReferenceEquals(current, next.Entry))
                byPid.Remove(next.Entry.Pid);
        }
    }

    /// <summary>The entry for a pid and start time, read from /proc when the table never saw it.</summary>
    private ProcessEntry? Resolve(int pid, long ticks)
    {
        if (pid <= 0)
            return null;
        if (Find(pid, ticks) is { } known)
            return known;
        if (ProcfsReader.TryReadStat(pid, out ProcfsStat stat) && stat.StartTicks == ticks)
        {
            ProcessEntry entry = Add(stat);
            entry.Parent = Find(stat.ParentPid);
            return entry;
        }
        return null;
    }

    /// <summary>
    /// The process <paramref name="pid"/> started at <paramref name="startTicks"/>
    /// (-1: whichever holds the pid) as /proc shows it now, for one whose exec
    /// or fork record was lost: a new entry when the table never knew it (or
    /// knew another process by its pid), else the known entry with its name,
    /// image, arguments (read whole, <see cref="ProcfsReader.ArgsLimit"/>), user,
    /// job and working directory read again. Null when it is gone, a kernel
    /// thread, or known to have exited.
    /// </summary>
    public ProcessEntry? Relearn(int pid, long startTicks = -1)
    {
        if (!ProcfsReader.TryReadStat(pid, out ProcfsStat stat) || stat.IsKernelThread || (startTicks >= 0 && stat.StartTicks != startTicks))
            return null;
        ProcessEntry? entry = Find(pid, stat.StartTicks);
        if (entry is { Exited: true })
            return null;
        if (entry is null)
        {
            entry = Add(stat);
            entry.Parent = Find(stat.ParentPid);
            // As a fork would have given it: the parent's job.
            entry.JobRootPid = entry.Parent?.JobRootPid ?? 0;
            entry.CgroupJob = entry.Parent?.CgroupJob;
        }
        else
        {
            // A new image the table never heard of: what it knew of the old one is not this one's.
            entry.Name = stat.Name;
            entry.ExecutableFile = null;
            entry.ExecutableSha256 = null;
            entry.ExecutableNotHashed = null;
            entry.Staging = null;
            entry.DetailsPending = true;
        }
        EnsureDetails(entry);
        return entry;
    }

    /// <summary>
    /// The process that holds <paramref name="pid"/> now, with its ancestors,
    /// read from /proc: for commands that run without a live sensor.
    /// </summary>
    public ProcessEntry? Load(int pid) => Load(pid, depth: 0);

    private ProcessEntry? Load(int pid, int depth)
    {
        if (depth > 64 || !ProcfsReader.TryReadStat(pid, out ProcfsStat stat))
            return null;
        ProcessEntry entry = Find(pid, stat.StartTicks) ?? Add(stat);
        EnsureDetails(entry);
        if (entry.Parent is null && stat.ParentPid > 0)
            entry.Parent = Load(stat.ParentPid, depth + 1);
        return entry;
    }

    /// <summary>
    /// The job root of a process the kernel did not see start: the outermost
    /// ancestor named as a root (a launcher's python workers belong to the
    /// launcher's job), or null outside every job.
    /// </summary>
    public static ProcessEntry? JobRootByLineage(ProcessEntry entry, IReadOnlySet<string> rootNames)
    {
        ProcessEntry? root = null;
        for (ProcessEntry? p = entry; p is not null; p = p.Parent)
        {
            if (rootNames.Contains(p.NameText))
                root = p;
        }
        return root;
    }

    /// <summary>Reads what /proc knows beyond the stat line of a process found there, once.</summary>
    public void EnsureDetails(ProcessEntry entry)
    {
        if (!entry.DetailsPending)
            return;
        entry.DetailsPending = false;
        // The pid must still be the same process, or the details would be another's.
        if (!ProcfsReader.TryReadStat(entry.Pid, out ProcfsStat now) || now.StartTicks != entry.StartTicks
            || !ProcfsReader.TryReadDetails(entry.Pid, out ProcfsDetails d))
            return;
        entry.Executable = d.Executable;
        entry.Args = d.Args;
        entry.ArgsTruncated = d.ArgsTruncated;
        entry.Uid = d.Uid;
        entry.UserName = users.NameOf(d.Uid);
        entry.CgroupJob = (cgroups?.Jobs ?? CgroupJobs.WithoutUnits).FromPath(d.CgroupPath) ?? entry.CgroupJob;
        entry.WorkingDirectory = d.WorkingDirectory;
        entry.Changed();
    }

    private ProcessEntry Create(int pid, long ticks, int ppid, long parentTicks, ProcessOrigin origin)
    {
        var entry = new ProcessEntry(pid, ticks, ids.For(pid, ticks), origin)
        {
            Parent = Resolve(ppid, parentTicks),
            ParentPid = ppid,
        };
        entry.CgroupJob = entry.Parent?.CgroupJob;
        byPid[pid] = entry;
        return entry;
    }

    private ProcessEntry Add(in ProcfsStat stat)
    {
        var entry = new ProcessEntry(stat.Pid, stat.StartTicks, ids.For(stat.Pid, stat.StartTicks), ProcessOrigin.Procfs)
        {
            ParentPid = stat.ParentPid,
            Name = stat.Name,
            IsKernelThread = stat.IsKernelThread,
            DetailsPending = !stat.IsKernelThread,
        };
        byPid[stat.Pid] = entry;
        return entry;
    }

    private const int PathCapacity = 256;
    private const int ArgsCapacity = 1024;

    private static byte[] CString(ReadOnlySpan<byte> bytes)
    {
        int end = bytes.IndexOf((byte)0);
        return (end < 0 ? bytes : bytes[..end]).ToArray();
    }

    private static byte[] TrimTrailingNul(ReadOnlySpan<byte> args)
    {
        while (!args.IsEmpty && args[^1] == 0)
            args = args[..^1];
        return args.ToArray();
    }
}
