using System.Text.RegularExpressions;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>
/// Names the job a cgroup path belongs to. Orchestrators encode their jobs in
/// the path: Slurm (job_N), Kubernetes (pod UID), container runtimes (the
/// container id in a scope), systemd services.
/// </summary>
public static partial class CgroupJobs
{
    [GeneratedRegex(@"/job_(\d+)(/|$)")]
    private static partial Regex SlurmJob();

    [GeneratedRegex(@"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")]
    private static partial Regex KubernetesPod();

    [GeneratedRegex(@"(?:docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope|/docker/([0-9a-f]{64})")]
    private static partial Regex Container();

    [GeneratedRegex(@"/([^/]+\.service)(/|$)")]
    private static partial Regex SystemdService();

    /// <summary>The job of a process in cgroup <paramref name="path"/>; its CgroupPath is the job's own cgroup, which holds the process.</summary>
    public static Job? FromPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "/")
            return null;
        if (SlurmJob().Match(path) is { Success: true } slurm)
            return new Job($"slurm:{slurm.Groups[1].Value}", "slurm", Through(path, slurm.Groups[1]));
        if (KubernetesPod().Match(path) is { Success: true } pod)
            return new Job($"k8s-pod:{pod.Groups[1].Value.Replace('_', '-')}", "kubernetes", Through(path, pod));
        if (Container().Match(path) is { Success: true } container)
        {
            Group id = container.Groups[1].Success ? container.Groups[1] : container.Groups[2];
            return new Job($"container:{id.Value[..12]}", "container", Through(path, container));
        }
        // The innermost service: user@UID.service holds a user's own units.
        MatchCollection services = SystemdService().Matches(path);
        if (services.Count > 0)
            return new Job($"systemd:{services[^1].Groups[1].Value}", "systemd", Through(path, services[^1].Groups[1]));
        return null;
    }

    /// <summary>The path up to the end of the component where <paramref name="match"/> ends.</summary>
    private static string Through(string path, Capture match)
    {
        int last = match.Index + match.Length - 1;
        if (path[last] == '/')
            last--;
        int end = path.IndexOf('/', last + 1);
        return end < 0 ? path : path[..end];
    }
}

/// <summary>
/// Maps the cgroup id a record carries to its path. On cgroup v2 the id is the
/// inode number of the cgroup's directory, so one walk of the hierarchy fills
/// the cache; a miss (a cgroup made since) walks again, at most every 100 ms.
/// </summary>
public sealed class CgroupPaths
{
    private static readonly long RescanIntervalNs = 100_000_000;
    private readonly string root;
    private readonly Dictionary<ulong, string> paths = [];
    private readonly Dictionary<ulong, Job?> jobs = [];
    private long lastScanNs = long.MinValue;

    public CgroupPaths(string root) => this.root = root;

    public Job? JobOf(ulong cgroupId)
    {
        if (jobs.TryGetValue(cgroupId, out Job? job))
            return job;
        string? path = PathOf(cgroupId);
        if (path is null)
            return null;
        job = CgroupJobs.FromPath(path);
        jobs[cgroupId] = job;
        return job;
    }

    public string? PathOf(ulong cgroupId)
    {
        if (paths.TryGetValue(cgroupId, out string? path))
            return path;
        long now = Libc.NowNs(Libc.ClockBoottime);
        if (now - lastScanNs < RescanIntervalNs)
            return null;
        lastScanNs = now;
        Scan();
        return paths.GetValueOrDefault(cgroupId);
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
                ulong ino = Inode(dir);
                string relative = "/" + Path.GetRelativePath(root, dir).Replace("\\", "/", StringComparison.Ordinal);
                paths[ino] = relative == "/." ? "/" : relative;
                foreach (string child in Directory.EnumerateDirectories(dir))
                    pending.Push(child);
            }
            catch (IOException)
            {
                // A cgroup removed while we walked.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static ulong Inode(string path) => Libc.InodeOf(path) ?? throw new IOException(path);
}
