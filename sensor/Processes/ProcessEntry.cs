using System.Text;

namespace Guard.Sensor.Processes;

/// <summary>Where the table learnt of a process.</summary>
public enum ProcessOrigin
{
    Procfs,
    Fork,
    Exec,
}

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

    public Job? Job { get; internal set; }

    public string? WorkingDirectory { get; internal set; }

    public bool IsKernelThread { get; internal set; }

    /// <summary>The training job's root above it (the kernel's verdict at exec, inherited at fork); 0 outside a job.</summary>
    public int JobRootPid { get; internal set; }

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
    public GpuActivity? Gpu { get; internal set; }

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

    public string NameText => Encoding.UTF8.GetString(Name);

    public string ExecutableText => Encoding.UTF8.GetString(Executable);

    public override string ToString() => $"{Pid} {NameText}";
}

/// <summary>The job a process belongs to by its cgroup: a Slurm job, a Kubernetes pod, a container, a systemd unit.</summary>
public sealed record Job(string Id, string Kind, string CgroupPath);

/// <summary>Per-process GPU driver activity as the kernel counted it.</summary>
public sealed class GpuActivity
{
    public const int KindCount = (int)Gpu.IoctlKind.Count;

    public ulong[] Counts { get; } = new ulong[KindCount];

    /// <summary>RM classes allocated, with how often.</summary>
    public Dictionary<uint, ulong> Classes { get; } = [];

    public bool Opened { get; internal set; }

    /// <summary>The device of its latest first touch (open or ioctl).</summary>
    public uint Major { get; private set; }

    public uint Minor { get; private set; }

    public Gpu.GpuRole Role { get; private set; }

    /// <summary>What the counts say it did: opened a GPU, allocated memory, made channels, compute objects, used UVM.</summary>
    public Gpu.GpuWork Work
    {
        get
        {
            Gpu.GpuWork work = Opened || Counts.Any(c => c > 0) ? Gpu.GpuWork.Opened : Gpu.GpuWork.None;
            if (Counts[(int)Gpu.IoctlKind.Uvm] > 0)
                work |= Gpu.GpuWork.UnifiedMemory;
            foreach (uint id in Classes.Keys)
            {
                work |= Gpu.GpuClasses.Find(id)?.Kind switch
                {
                    Gpu.GpuObjectKind.Memory => Gpu.GpuWork.Memory,
                    Gpu.GpuObjectKind.Channel or Gpu.GpuObjectKind.ChannelGroup => Gpu.GpuWork.Channel,
                    Gpu.GpuObjectKind.Compute => Gpu.GpuWork.Compute,
                    _ => Gpu.GpuWork.None,
                };
            }
            return work;
        }
    }

    internal void Touched(uint major, uint minor, Gpu.GpuRole role)
    {
        Major = major;
        Minor = minor;
        Role = role;
    }
}
