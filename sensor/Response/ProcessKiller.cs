using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>What a kill did, or why it was refused.</summary>
/// <param name="Target">The process named.</param>
/// <param name="Scope">The process, its tree, or its job.</param>
/// <param name="Done">Whether it was carried out.</param>
/// <param name="Message">One line for a person: what was done, or why not.</param>
/// <param name="Signalled">The processes signalled; for a job, the one named (cgroup.kill reports no count).</param>
/// <param name="CgroupPath">The job's cgroup (relative to the cgroup2 mount), for a job kill.</param>
public sealed record KillOutcome(ProcessTarget Target, KillScope Scope, bool Done, string Message, IReadOnlyList<int> Signalled, string? CgroupPath = null)
{
    /// <summary>A kill not carried out, and why.</summary>
    public static KillOutcome Refused(ProcessTarget target, KillScope scope, string reason) => new(target, scope, false, reason, []);

    /// <summary>The outcome as an ECS action event: ordered from the command line by this process's user, or by a rule.</summary>
    public ActionEvent ToActionEvent(ProcessEntry? process, string orderedBy = "cli") => new()
    {
        Action = Scope switch { KillScope.Tree => "kill-tree", KillScope.Job => "kill-job", _ => "kill" },
        Succeeded = Done,
        Message = Message,
        OrderedBy = orderedBy,
        OrderedByUid = orderedBy == "cli" ? Libc.PersonUid() : Libc.GetUid(),
        Pids = Signalled,
        CgroupPath = CgroupPath,
        Process = process,
        TimeNs = Libc.NowNs(Libc.ClockBoottime),
        Sequence = 1,
    };
}

/// <summary>
/// Kills a process, its tree (by recorded lineage, <see cref="StoppedTree"/>;
/// for a root that has exited, what it left), or its job's cgroup, never a
/// process other than the one named: every signal
/// goes through a pidfd opened first and then checked against the start time;
/// a job goes through cgroup.kill. Refuses PID 1, kernel threads, this process
/// and the running sensors (<see cref="RunningSensors"/>).
/// </summary>
public sealed class ProcessKiller
{
    private const int Esrch = 3;

    private readonly Cgroupfs cgroupfs;
    private readonly CgroupJobs jobs;

    /// <summary>
    /// Kills on the cgroup2 hierarchy mounted at <paramref name="cgroupRoot"/>
    /// (usually /sys/fs/cgroup); a process's job is named by <paramref name="jobs"/>
    /// (the policy's units), or without units when null.
    /// </summary>
    public ProcessKiller(string cgroupRoot, CgroupJobs? jobs = null)
    {
        cgroupfs = new Cgroupfs(cgroupRoot);
        this.jobs = jobs ?? CgroupJobs.WithoutUnits;
    }

    /// <summary>
    /// Why this process must not be signalled, or null. Reads only what it is
    /// given and sends nothing, so the refusals can be tested on PID 1 itself.
    /// </summary>
    public static string? Refusal(in ProcfsStat stat, long? expectedStartTicks, int selfPid)
    {
        string name = Printable.Of(stat.Name);
        if (stat.Pid == 1)
            return "PID 1 is the init process: killing it takes the machine down";
        if (stat.Pid == selfPid)
            return $"{stat.Pid} is this guard process";
        if (stat.IsKernelThread || stat.Pid == 2)
            return $"{stat.Pid} ({name}) is a kernel thread";
        if (expectedStartTicks is long expected && stat.StartTicks != expected)
            return $"pid {stat.Pid} now belongs to another process ({name}, started at tick {stat.StartTicks}, not {expected}): the one you named has exited";
        return null;
    }

    /// <summary>
    /// Kills <paramref name="target"/> (SIGKILL through a pidfd checked against
    /// its start time), its tree (stopped first), or its job (cgroup.kill).
    /// Every refusal is an outcome, not an exception.
    /// </summary>
    /// <remarks>
    /// A tree whose root has exited (or whose pid another process holds now),
    /// named with its start time, is what the root left behind: its live
    /// descendants by the kernel's recorded lineage, killed the same way; the
    /// process holding the pid now is never touched.
    /// </remarks>
    public KillOutcome Kill(ProcessTarget target, KillScope scope)
    {
        if (scope == KillScope.Tree)
            return KillTreeOf(target);
        using Pidfd? root = OpenChecked(target, out _, out string refusal, out _);
        if (root is null)
            return KillOutcome.Refused(target, scope, refusal);
        return scope == KillScope.Process ? KillOne(target, root) : KillJob(target);
    }

    /// <summary>
    /// <see cref="Kill"/> with <see cref="KillScope.Tree"/>: the process and every
    /// descendant, stopped first, or what it left behind when it has exited. Needs
    /// no cgroup; the same refusals (PID 1, a running sensor, a kernel thread).
    /// </summary>
    public static KillOutcome KillTreeOf(ProcessTarget target)
    {
        using Pidfd? root = OpenChecked(target, out ProcfsStat stat, out string refusal, out bool exited);
        if (root is null)
            return exited && target.StartTicks is long startTicks ? KillLeftBehind(target, startTicks, refusal) : KillOutcome.Refused(target, KillScope.Tree, refusal);
        return KillTree(target, root, stat.StartTicks);
    }

    /// <summary>
    /// A pidfd on exactly the process named, or null with the reason it may not
    /// be touched. The start time is checked after the pidfd is open: if the pid
    /// changed hands in between, the start time says so.
    /// </summary>
    public static Pidfd? OpenChecked(ProcessTarget target, out string refusal) => OpenChecked(target, out _, out refusal);

    /// <inheritdoc cref="OpenChecked(ProcessTarget, out string)"/>
    /// <param name="stat">The stat line read with the pidfd open: the process the pidfd holds.</param>
    public static Pidfd? OpenChecked(ProcessTarget target, out ProcfsStat stat, out string refusal) => OpenChecked(target, out stat, out refusal, out _);

    /// <inheritdoc cref="OpenChecked(ProcessTarget, out ProcfsStat, out string)"/>
    /// <param name="exited">True when the refusal is that the process named has exited: no pid, or its pid another's (by start time) now.</param>
    private static Pidfd? OpenChecked(ProcessTarget target, out ProcfsStat stat, out string refusal, out bool exited)
    {
        refusal = "";
        stat = default;
        exited = false;
        if (target.BootPrefix is { } boot && boot != EntityIds.ForThisBoot().BootPrefix)
        {
            refusal = $"entity id {target.BootPrefix}-{target.StartTicks}-{target.Pid} is from another boot or host";
            return null;
        }
        Pidfd? pidfd = Pidfd.TryOpen(target.Pid, out int errno);
        if (pidfd is null)
        {
            exited = errno == Esrch;
            refusal = errno == Esrch ? $"no process {target.Pid}" : $"cannot open process {target.Pid}: {Libc.ErrorText(errno)}";
            return null;
        }
        exited = !ProcfsReader.TryReadStat(target.Pid, out stat) || (target.StartTicks is long expected && stat.StartTicks != expected);
        if (stat.Pid == 0)
            refusal = $"no process {target.Pid}";
        else if (Refusal(stat, target.StartTicks, Environment.ProcessId) is { } reason)
            refusal = reason;
        // Known by its registration, or, whatever run directory it was given, as the owner of pinned enforcement.
        else if (RunningSensors.IsRunning(target.Pid, stat.StartTicks) || SensorPins.Owners().Contains((target.Pid, stat.StartTicks)))
            refusal = $"{target.Pid} is a running Guard sensor: stop it with SIGTERM, or `guard detach --all`";
        else
            return pidfd;
        pidfd.Dispose();
        return null;
    }

    private static KillOutcome KillOne(ProcessTarget target, Pidfd pidfd)
    {
        int errno = pidfd.Signal(StoppedTree.SigKill);
        return errno == 0
            ? new KillOutcome(target, KillScope.Process, true, $"killed {target.Pid}", [target.Pid])
            : KillOutcome.Refused(target, KillScope.Process, errno == Esrch ? $"process {target.Pid} had already exited" : $"signal failed: {Libc.ErrorText(errno)}");
    }

    /// <summary>
    /// Stops the whole tree first, by recorded lineage and live parents, so none
    /// escapes by forking or by being re-parented, then kills every member
    /// through its own pidfd, and whatever still turns up below them.
    /// </summary>
    private static KillOutcome KillTree(ProcessTarget target, Pidfd root, long rootStartTicks)
    {
        using StoppedTree tree = StoppedTree.Stop(root, rootStartTicks);
        if (tree.Refusal is { } refusal)
            return KillOutcome.Refused(target, KillScope.Tree, refusal);
        List<int> killed = tree.Kill();
        string message = $"killed {killed.Count} process{(killed.Count == 1 ? "" : "es")} of the tree of {target.Pid}"
            + (tree.Settled ? "" : " (still growing when stopping gave up)")
            + (tree.LineageNote is { } note ? $"; {note}" : "");
        return new KillOutcome(target, KillScope.Tree, killed.Count > 0, message, killed);
    }

    /// <summary>
    /// The root named by <paramref name="target"/> has exited (<paramref name="why"/>
    /// says how it was found gone): its live descendants by recorded lineage are
    /// stopped, then killed, as a tree is. Refused when it left none.
    /// </summary>
    private static KillOutcome KillLeftBehind(ProcessTarget target, long startTicks, string why)
    {
        using StoppedTree tree = StoppedTree.StopLeftBehind(target.Pid, startTicks);
        if (tree.Refusal is { } refusal)
            return KillOutcome.Refused(target, KillScope.Tree, refusal);
        List<int> killed = tree.Kill();
        string note = tree.LineageNote is { } n ? $"; {n}" : "";
        if (killed.Count == 0)
            return KillOutcome.Refused(target, KillScope.Tree, $"{why}; it left no live descendant by recorded lineage{note}");
        string message = $"{target.Pid} had exited; killed its {killed.Count} live descendant{(killed.Count == 1 ? "" : "s")} by recorded lineage ({string.Join(' ', killed)})"
            + (tree.Settled ? "" : " (still growing when stopping gave up)") + note;
        return new KillOutcome(target, KillScope.Tree, true, message, killed);
    }

    private KillOutcome KillJob(ProcessTarget target)
    {
        string? path = ProcfsReader.ReadCgroupPath($"/proc/{target.Pid.ToString(CultureInfo.InvariantCulture)}");
        return jobs.FromPath(path) is { } job
            ? KillJob(job, target)
            : KillOutcome.Refused(target, KillScope.Job, $"process {target.Pid} is in no job's cgroup ({path ?? "unknown"}); use --tree");
    }

    /// <summary>Kills every process of <paramref name="job"/>'s cgroup through cgroup.kill; <paramref name="target"/> is who it was asked for.</summary>
    public KillOutcome KillJob(Job job, ProcessTarget target)
    {
        if (JobRefusal(job) is { } refusal)
            return KillOutcome.Refused(target, KillScope.Job, refusal);
        string kill = cgroupfs.FileOf(job.CgroupPath, Cgroupfs.KillFile);
        if (!File.Exists(kill))
            return KillOutcome.Refused(target, KillScope.Job, $"{kill} does not exist (cgroup.kill needs Linux 5.14); use --tree");
        if (!cgroupfs.TryKill(job.CgroupPath, out string error))
            return KillOutcome.Refused(target, KillScope.Job, $"cannot write {kill}: {error}");
        return new KillOutcome(target, KillScope.Job, true, $"killed job {job.Id} through {kill}", [target.Pid], job.CgroupPath);
    }

    /// <summary>Why a whole job cgroup must not be acted on, or null: never one that holds this guard process.</summary>
    internal static string? JobRefusal(Job job)
    {
        string? own = ProcfsReader.ReadCgroupPath("/proc/self");
        if (job.CgroupPath == "/" || (own is not null && (own == job.CgroupPath || own.StartsWith(job.CgroupPath + "/", StringComparison.Ordinal))))
            return $"job {job.Id} ({job.CgroupPath}) holds this guard process too";
        return null;
    }
}
