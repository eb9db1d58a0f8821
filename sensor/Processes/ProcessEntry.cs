using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>
/// One process, known by identity (boot, pid, start time) rather than pid.
/// <see cref="Parent"/> is the process that forked it, recorded at fork and
/// kept when the process is re-parented (setsid, double fork, nohup) or the
/// parent exits: lineage is history, not today's ppid.
/// </summary>
public sealed class ProcessEntry
{
    internal ProcessEntry(int pid, long startTicks, string entityId, ProcessOrigin origin)
    {
        Pid = pid;
        StartTicks = startTicks;
        EntityId = entityId;
        EntityIdUtf8 = Encoding.UTF8.GetBytes(entityId);
        Origin = origin;
    }

    public int Pid { get; }

    /// <summary>Start time in clock ticks since boot, as /proc/PID/stat field 22 shows it.</summary>
    public long StartTicks { get; }

    public string EntityId { get; }

    /// <summary>The same id, encoded once for output.</summary>
    public byte[] EntityIdUtf8 { get; }

    public ProcessOrigin Origin { get; }

    public ProcessEntry? Parent { get; internal set; }

    /// <summary>Parent pid as first seen, for a parent the table never knew.</summary>
    public int ParentPid { get; internal set; }

    /// <summary>The executable path as exec was given it, raw bytes.</summary>
    public byte[] Executable { get; internal set; } = [];

    /// <summary>comm: the kernel's 15-byte name.</summary>
    public byte[] Name { get; internal set; } = [];

    /// <summary>The name of the program that exec'd into this one (a shell that ran its command in place); null before any exec.</summary>
    public byte[]? ExecutedFrom { get; internal set; }

    /// <summary>Arguments, NUL-separated, raw bytes as the process set them.</summary>
    public byte[] Args { get; internal set; } = [];

    public bool ArgsTruncated { get; internal set; }

    public uint Uid { get; internal set; }

    public string? UserName { get; internal set; }

    /// <summary>
    /// Its cgroup's job (a Slurm job, a pod, a container, a unit the policy
    /// names), kept when it leaves that cgroup, as the kernel keeps it; null
    /// when it has none. Which job it is in is <see cref="Membership"/>.
    /// </summary>
    public Job? CgroupJob { get; internal set; }

    public string? WorkingDirectory { get; internal set; }

    public bool IsKernelThread { get; internal set; }

    /// <summary>The training job's root above it (the kernel's verdict at exec, inherited at fork); 0 outside a job.</summary>
    public int JobRootPid { get; internal set; }

    /// <summary>
    /// The job root as a process: itself or the ancestor whose pid is
    /// <see cref="JobRootPid"/>. Found through lineage, which is identity,
    /// never by pid alone, which a newer process may hold by now; null outside
    /// a job, or when its lineage does not reach the root.
    /// </summary>
    public ProcessEntry? JobRoot
    {
        get
        {
            if (JobRootPid == 0)
                return null;
            for (ProcessEntry? p = this; p is not null; p = p.Parent)
            {
                if (p.Pid == JobRootPid)
                    return p;
            }
            return null;
        }
    }

    /// <summary>Which job it is in: the one answer every rule, response and output uses (see <see cref="JobMembership"/>).</summary>
    public JobMembership Membership => new(CgroupJob, JobRootPid, JobRoot);

    /// <summary>The file exec opened for its image, as the kernel named it; null when no exec was seen (found in /proc at start).</summary>
    public FileId? ExecutableFile { get; internal set; }

    /// <summary>The SHA-256 of that file, read through what the kernel executed; null until hashed, or when it could not be.</summary>
    public string? ExecutableSha256 { get; internal set; }

    /// <summary>Why that file could not be hashed ("gone, and its path names another file now", ...); null until tried, or once hashed.</summary>
    public string? ExecutableNotHashed { get; internal set; }

    /// <summary>Where its executable came from when that is suspect: "memfd", "unlinked", "shared-directory"; null otherwise.</summary>
    public string? Staging { get; internal set; }

    /// <summary>Weak evidence seen so far (a pool port, a pool domain): never acted on alone.</summary>
    public List<KeyValuePair<string, string>>? WeakEvidence { get; internal set; }

    /// <summary>Counts changes to what output shows of it (exec, details from /proc), so renderings can be reused.</summary>
    public long Revision { get; private set; }

    internal void Changed() => Revision++;

    /// <summary>Found in /proc at start; its arguments, executable, user and job are not read yet.</summary>
    internal bool DetailsPending { get; set; }

    public bool Exited { get; internal set; }

    public uint ExitStatus { get; internal set; }

    /// <summary>NVML's latest sample of it, per device index: memory and utilisation beside its lineage and job.</summary>
    public Dictionary<int, Gpu.GpuProcessSample>? GpuUsage { get; internal set; }

    /// <summary>Driver activity counted by the kernel, filled when the process touches a GPU.</summary>
    public GpuActivity? GpuActivity { get; internal set; }

    /// <summary>True when this process or one of its ancestors has <paramref name="pid"/>.</summary>
    public bool DescendsFrom(int pid)
    {
        for (ProcessEntry? p = this; p is not null; p = p.Parent)
        {
            if (p.Pid == pid)
                return true;
        }
        return false;
    }

    /// <summary>The comm as UTF-8 text, as the process set it: for matching, never for printing (see <see cref="DisplayName"/>).</summary>
    public string NameText => Encoding.UTF8.GetString(Name);

    /// <summary>The comm made safe to show a person (<see cref="Printable"/>): a name with ESC or newline bytes cannot drive a terminal or forge a line.</summary>
    public string DisplayName => Printable.Of(Name);

    public string ExecutableText => Encoding.UTF8.GetString(Executable);

    public override string ToString() => $"{Pid} {DisplayName}";
}
