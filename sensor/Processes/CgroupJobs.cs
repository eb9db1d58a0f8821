using System.Globalization;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>
/// Names the job a cgroup path belongs to, exactly as the kernel judges it
/// (bpf/verdicts.h job_cgroup_of_current): a directory on the path names a job
/// when it is a Slurm job (job_778), a Kubernetes pod
/// (kubepods-burstable-pod&lt;UID&gt;.slice, pod&lt;UID&gt;), a container
/// (docker-&lt;64 hex&gt;.scope, cri-containerd-, crio-, libpod-, or &lt;64
/// hex&gt; right under docker) or a unit the policy names; the outermost
/// such directory is the job's own cgroup, so a cgroup made inside a job never
/// takes a process out of it. Only the first <see cref="GuardCgroupName.JobLevels"/>
/// levels are read, and a name of <see cref="GuardCgroupName.Capacity"/> - 1
/// bytes or more names no job, as in the kernel.
/// </summary>
public sealed class CgroupJobs
{
    private const int UuidLength = 36;
    private const int ContainerIdLength = 64;
    private static readonly string[] Runtimes = ["docker", "cri-containerd", "crio", "libpod"];

    private readonly HashSet<string> units;

    /// <summary>Judges with <paramref name="units"/> (the policy's [jobs] units, "trainer.service") as jobs; no other unit is one.</summary>
    public CgroupJobs(IEnumerable<string> units) => this.units = [.. units];

    /// <summary>Slurm jobs, pods and containers only: no unit is a job.</summary>
    public static CgroupJobs WithoutUnits { get; } = new([]);

    /// <summary>The job of a process in cgroup <paramref name="path"/> (relative to the cgroup2 mount, "/a/b"); its CgroupPath is the job's own cgroup, which holds the process. Null outside every job.</summary>
    public Job? FromPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "/")
            return null;
        string[] names = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int level = 0; level < Math.Min(names.Length, GuardCgroupName.JobLevels); level++)
        {
            if (Named(names[level], level > 0 ? names[level - 1] : null, units) is { } job)
                return job with { CgroupPath = "/" + string.Join('/', names, 0, level + 1), Placement = Placed(job, names, level) };
        }
        return null;
    }

    /// <summary>
    /// Where in <paramref name="job"/> (named by names[<paramref name="level"/>])
    /// the cgroup is: a Slurm step_S and the task_T below it (cgroup v2's
    /// step_S/user/task_T and v1's step_S/task_T), a pod's container
    /// (RUNTIME-&lt;64 hex&gt;.scope under the systemd driver, &lt;64 hex&gt; under
    /// cgroupfs), a container job's own id and runtime. Names below the job are
    /// the job's to make: each part must have its exact form or is left out,
    /// and only the first <see cref="GuardCgroupName.JobLevels"/> levels below
    /// are read. Null when nothing is known.
    /// </summary>
    private static JobPlacement? Placed(Job job, string[] names, int level)
    {
        string? step = null, task = null, container = null, runtime = null;
        if (job.Kind == "container")
            (container, runtime) = ContainerOf(names[level], level > 0 ? names[level - 1] : null);
        int end = Math.Min(names.Length, level + 1 + GuardCgroupName.JobLevels);
        for (int i = level + 1; i < end; i++)
        {
            string name = names[i];
            if (job.Kind == "slurm")
            {
                if (step is null && SlurmStep(name) is { } s)
                    step = s;
                else if (step is not null && task is null && name.Length > 5 && name.StartsWith("task_", StringComparison.Ordinal) && IsDigits(name.AsSpan(5)))
                    task = name[5..];
            }
            else if (job.Kind == "kubernetes" && container is null)
            {
                (container, runtime) = ContainerOf(name, names[i - 1]);
                if (container is null && name.Length == ContainerIdLength && name.All(IsLowerHex))
                    container = name; // cgroupfs driver: the bare id right under the pod
            }
        }
        return step is null && task is null && container is null ? null : new JobPlacement(step, task, container, runtime);
    }

    /// <summary>"step_" then digits, batch, extern or interactive: the step.</summary>
    private static string? SlurmStep(string name)
    {
        if (name.Length <= 5 || !name.StartsWith("step_", StringComparison.Ordinal))
            return null;
        string step = name[5..];
        return IsDigits(step) || step is "batch" or "extern" or "interactive" ? step : null;
    }

    /// <summary>The whole container id and its runtime's ECS name from a RUNTIME-&lt;64 hex&gt;.scope (or a bare id under docker).</summary>
    private static (string? Id, string? Runtime) ContainerOf(string name, string? parent)
    {
        if (Container(name, parent == "docker") is not { } id)
            return (null, null);
        string prefix = name.Length > ContainerIdLength + ".scope".Length ? name[..(name.Length - ContainerIdLength - ".scope".Length - 1)] : "docker";
        return (id, prefix switch
        {
            "cri-containerd" => "containerd",
            "crio" => "cri-o",
            "libpod" => "podman",
            _ => "docker",
        });
    }

    private static bool IsDigits(ReadOnlySpan<char> text) => text.Length is > 0 and <= 20 && text.IndexOfAnyExceptInRange('0', '9') < 0;

    /// <summary>
    /// The job the last directory of <paramref name="path"/> names, any unit
    /// counting: for a person who names a job ("systemd:cron.service") and
    /// the cgroup to act on is looked for. Null when it names none.
    /// </summary>
    public static Job? NamedBy(string path)
    {
        string[] names = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        return names.Length == 0 ? null
            : Named(names[^1], names.Length > 1 ? names[^2] : null, null) is { } job ? job with { CgroupPath = "/" + string.Join('/', names) } : null;
    }

    /// <summary>The job one directory name names (its CgroupPath left empty); <paramref name="jobUnits"/> null: every unit is one.</summary>
    private static Job? Named(string name, string? parent, HashSet<string>? jobUnits)
    {
        if (Encoding.UTF8.GetByteCount(name) >= GuardCgroupName.Capacity - 1)
            return null;
        if (SlurmJob(name) is { } slurm)
            return new Job($"slurm:{slurm}", "slurm", "");
        if (KubernetesPod(name) is { } pod)
            return new Job($"k8s-pod:{pod.Replace('_', '-')}", "kubernetes", "");
        if (Container(name, parent == "docker") is { } container)
            return new Job($"container:{container[..12]}", "container", "");
        if (jobUnits is null ? IsUnit(name) : jobUnits.Contains(name))
            return new Job($"systemd:{name}", "systemd", "");
        return null;
    }

    /// <summary>"job_" then digits: the job number.</summary>
    private static string? SlurmJob(string name) =>
        name.Length > 4 && name.StartsWith("job_", StringComparison.Ordinal) && name.AsSpan(4).IndexOfAnyExceptInRange('0', '9') < 0 ? name[4..] : null;

    /// <summary>"pod&lt;UID&gt;", alone or after a '-', then ".slice" or nothing: the UID (8-4-4-4-12 hex digits, separated by '-' or '_').</summary>
    private static string? KubernetesPod(string name)
    {
        string stem = name.EndsWith(".slice", StringComparison.Ordinal) ? name[..^6] : name;
        int uid = stem.Length - UuidLength;
        if (uid < 3 || !stem.AsSpan(uid - 3).StartsWith("pod", StringComparison.Ordinal) || (uid > 3 && stem[uid - 4] != '-'))
            return null;
        for (int i = 0; i < UuidLength; i++)
        {
            char c = stem[uid + i];
            bool ok = i is 8 or 13 or 18 or 23 ? c is '-' or '_' : IsLowerHex(c);
            if (!ok)
                return null;
        }
        return stem[uid..];
    }

    /// <summary>RUNTIME-&lt;64 hex&gt;.scope, or &lt;64 hex&gt; right under "docker": the container id.</summary>
    private static string? Container(string name, bool underDocker)
    {
        if (underDocker && name.Length == ContainerIdLength && name.All(IsLowerHex))
            return name;
        if (!name.EndsWith(".scope", StringComparison.Ordinal))
            return null;
        int runtime = name.Length - ContainerIdLength - ".scope".Length - 1;
        if (runtime < 0 || name[runtime] != '-' || !Runtimes.Contains(name[..runtime]))
            return null;
        string id = name.Substring(runtime + 1, ContainerIdLength);
        return id.All(IsLowerHex) ? id : null;
    }

    private static bool IsUnit(string name) =>
        name.EndsWith(".service", StringComparison.Ordinal) || name.EndsWith(".scope", StringComparison.Ordinal) || name.EndsWith(".slice", StringComparison.Ordinal);

    private static bool IsLowerHex(char c) => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f';
}

/// <summary>
/// Maps the cgroup id a record carries to its path and job. On cgroup v2 the
/// id is the inode number of the cgroup's directory, and open_by_handle_at
/// opens a cgroup by it (a kernfs file handle): a cgroup made a
/// moment before the record is found as surely as an old one, with no walk
/// and no window. Where file handles are refused (no CAP_DAC_READ_SEARCH), a
/// miss walks the hierarchy instead. At most <see cref="Capacity"/> cgroups
/// are remembered; past that the memory starts again.
/// </summary>
public sealed class CgroupPaths
{
    /// <summary>Cgroups remembered before the cache is cleared: a host that makes and removes cgroups all day must not grow the sensor.</summary>
    public const int Capacity = 65536;

    // open_by_handle_at's refusals (errno): not allowed, or not supported here.
    private const int Eperm = 1;
    private const int Enosys = 38;
    private const int Eopnotsupp = 95;

    private readonly string root;
    private readonly CgroupJobs jobs;
    private readonly Dictionary<ulong, string> paths = [];
    private readonly Dictionary<ulong, Job?> jobsById = [];
    private readonly PodNames pods;
    private bool handlesRefused;

    /// <summary>Resolves on the cgroup2 hierarchy mounted at <paramref name="root"/>, naming jobs with <paramref name="jobs"/> and pods by <paramref name="pods"/> (default: this node's kubelet, <see cref="PodNames.ForThisHost"/>).</summary>
    public CgroupPaths(string root, CgroupJobs jobs, PodNames? pods = null)
    {
        this.root = root.TrimEnd('/');
        this.jobs = jobs;
        this.pods = pods ?? PodNames.ForThisHost();
    }

    /// <summary>How jobs are named from paths here.</summary>
    public CgroupJobs Jobs => jobs;

    /// <summary>The job of a process in cgroup <paramref name="cgroupId"/>; null outside every job, or when the cgroup is gone.</summary>
    public Job? JobOf(ulong cgroupId)
    {
        if (jobsById.TryGetValue(cgroupId, out Job? job))
            return job;
        string? path = PathOf(cgroupId);
        if (path is null)
            return null;
        job = WithPodName(jobs.FromPath(path));
        Remember(jobsById, cgroupId, job);
        return job;
    }

    /// <summary>The path of cgroup <paramref name="cgroupId"/> relative to the mount ("/a/b"), or null when it is gone.</summary>
    public string? PathOf(ulong cgroupId)
    {
        if (paths.TryGetValue(cgroupId, out string? path))
            return path;
        path = handlesRefused ? null : Open(cgroupId);
        if (path is null && handlesRefused)
        {
            Scan();
            path = paths.GetValueOrDefault(cgroupId);
        }
        if (path is not null)
            Remember(paths, cgroupId, path);
        return path;
    }

    /// <summary>
    /// Every process now in a job's cgroup or below it, with its job and the
    /// job cgroup's id: one walk of the hierarchy, reading cgroup.procs below
    /// job cgroups only. For processes that were there before the sensor.
    /// </summary>
    public Dictionary<int, (Job Job, ulong CgroupId)> JobMembersNow()
    {
        var members = new Dictionary<int, (Job, ulong)>();
        var pending = new Stack<(string Dir, Job? Job, ulong JobId)>();
        pending.Push((root, null, 0));
        while (pending.Count > 0)
        {
            (string dir, Job? job, ulong jobId) = pending.Pop();
            try
            {
                if (job is null && jobs.FromPath(dir == root ? "/" : dir[root.Length..]) is { } found)
                {
                    job = found;
                    jobId = Libc.InodeOf(dir) ?? 0;
                }
                if (job is not null)
                {
                    foreach (string line in File.ReadLines(Path.Join(dir, "cgroup.procs")))
                    {
                        if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                            members[pid] = (job, jobId);
                    }
                }
                foreach (string child in Directory.EnumerateDirectories(dir))
                    pending.Push((child, job, jobId));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A cgroup removed while we walked.
            }
        }
        return members;
    }

    /// <summary>A pod with its name and namespace when the kubelet's directories say; any other job as it is.</summary>
    private Job? WithPodName(Job? job)
    {
        if (job is not { Kind: "kubernetes" } || pods.Find(job.Id["k8s-pod:".Length..]) is not { } pod)
            return job;
        JobPlacement placement = job.Placement ?? new JobPlacement(null, null, null, null);
        return job with { Placement = placement with { PodName = pod.Name, PodNamespace = pod.Namespace } };
    }

    private static void Remember<T>(Dictionary<ulong, T> cache, ulong id, T value)
    {
        if (cache.Count >= Capacity)
            cache.Clear();
        cache[id] = value;
    }

    /// <summary>The path through a file handle; null when the cgroup is gone, or handles are refused (then <see cref="handlesRefused"/>).</summary>
    private string? Open(ulong cgroupId)
    {
        string? full;
        try
        {
            using FileDescriptor mount = FileDescriptor.OpenDirectory(root);
            using FileDescriptor? cgroup = FileDescriptor.OpenKernfsDirectory(mount, cgroupId, out int errno);
            handlesRefused = errno is Eperm or Enosys or Eopnotsupp;
            full = cgroup?.CurrentPath();
        }
        catch (SensorException)
        {
            return null; // the mount itself is gone
        }
        // A cgroup removed since it was opened reads "... (deleted)": gone.
        if (full is null || full.EndsWith(" (deleted)", StringComparison.Ordinal))
            return null;
        return full == root ? "/" : full.StartsWith(root + "/", StringComparison.Ordinal) ? full[root.Length..] : null;
    }

    private void Scan()
    {
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            try
            {
                ulong ino = Libc.InodeOf(dir) ?? throw new IOException(dir);
                Remember(paths, ino, dir == root ? "/" : dir[root.Length..]);
                foreach (string child in Directory.EnumerateDirectories(dir))
                    pending.Push(child);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A cgroup removed while we walked.
            }
        }
    }
}
