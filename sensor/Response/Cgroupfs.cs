using System.Globalization;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// The cgroup v2 files Guard reads and writes, under one mount: the one place
/// that writes cgroupfs. Cgroups are named by their path relative to the
/// mount ("/slurm/job_42"), as /proc/PID/cgroup and <see cref="Job.CgroupPath"/> name them.
/// File names and values are the kernel's (Documentation/admin-guide/cgroup-v2.rst).
/// </summary>
internal sealed class Cgroupfs
{
    /// <summary>Write 1 to freeze the cgroup and its descendants, 0 to thaw (Linux 5.2).</summary>
    public const string FreezeFile = "cgroup.freeze";

    /// <summary>Write 1 to SIGKILL every process of the cgroup and its descendants (Linux 5.14).</summary>
    public const string KillFile = "cgroup.kill";

    /// <summary>Key-value lines; "frozen 1" once a freeze has settled.</summary>
    public const string EventsFile = "cgroup.events";

    /// <summary>The pids of the cgroup's own processes, one a line.</summary>
    public const string ProcsFile = "cgroup.procs";

    /// <summary>Reads and writes cgroups under <paramref name="root"/>, the cgroup2 mount (usually /sys/fs/cgroup).</summary>
    public Cgroupfs(string root) => Root = root;

    /// <summary>The cgroup2 mount.</summary>
    public string Root { get; }

    /// <summary>The directory of <paramref name="cgroupPath"/>.</summary>
    public string DirectoryOf(string cgroupPath) => Path.Join(Root, cgroupPath);

    /// <summary>The full path of the control file <paramref name="name"/> of <paramref name="cgroupPath"/>.</summary>
    public string FileOf(string cgroupPath, string name) => Path.Join(Root, cgroupPath, name);

    /// <summary>The cgroup id of <paramref name="cgroupPath"/>: on cgroup v2, the inode number of its directory; null when it does not exist.</summary>
    public ulong? IdOf(string cgroupPath) => Libc.InodeOf(DirectoryOf(cgroupPath));

    /// <summary>Freezes the cgroup. Throws <see cref="SensorException"/> naming the file when it cannot be written.</summary>
    public void Freeze(string cgroupPath) => Write(FileOf(cgroupPath, FreezeFile), "1");

    /// <summary>
    /// Thaws the cgroup; false, writing nothing, when it has no cgroup.freeze
    /// (it is gone). Throws <see cref="SensorException"/> naming the file when it cannot be written.
    /// </summary>
    public bool Thaw(string cgroupPath)
    {
        string freeze = FileOf(cgroupPath, FreezeFile);
        if (!File.Exists(freeze))
            return false;
        Write(freeze, "0");
        return true;
    }

    /// <summary>What cgroup.events says now: true "frozen 1", false "frozen 0"; null when the cgroup is gone or has no freezer.</summary>
    public bool? IsFrozen(string cgroupPath)
    {
        try
        {
            foreach (string line in File.ReadLines(FileOf(cgroupPath, EventsFile)))
            {
                if (line.StartsWith("frozen ", StringComparison.Ordinal))
                    return line == "frozen 1";
            }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether someone asked the cgroup to thaw: cgroup.freeze reads 0. False when it is gone.</summary>
    public bool ThawAsked(string cgroupPath)
    {
        try
        {
            return File.ReadAllText(FileOf(cgroupPath, FreezeFile)).Trim() == "0";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>How many levels below the cgroup2 root <paramref name="cgroupPath"/> ("/a/b" is 2) is.</summary>
    public static int LevelOf(string cgroupPath) => cgroupPath.Split('/', StringSplitOptions.RemoveEmptyEntries).Length;

    /// <summary>
    /// Waits up to <paramref name="wait"/> (polling every 5 ms) for a freeze to
    /// settle; true once cgroup.events says "frozen 1". Throws <see cref="IOException"/> when the cgroup is gone.
    /// </summary>
    public bool WaitFrozen(string cgroupPath, TimeSpan wait)
    {
        string events = FileOf(cgroupPath, EventsFile);
        DateTime deadline = DateTime.UtcNow + wait;
        do
        {
            if (File.ReadLines(events).Contains("frozen 1"))
                return true;
            Thread.Sleep(5);
        }
        while (DateTime.UtcNow < deadline);
        return false;
    }

    /// <summary>Kills every process of the cgroup and below through cgroup.kill. Throws <see cref="SensorException"/> naming the file when it cannot be written.</summary>
    public void Kill(string cgroupPath) => Write(FileOf(cgroupPath, KillFile), "1");

    /// <summary>Kills every process of the cgroup and below through cgroup.kill; false with the I/O error's text when it cannot be written.</summary>
    public bool TryKill(string cgroupPath, out string error) => TryWrite(FileOf(cgroupPath, KillFile), "1", out error);

    /// <summary>Processes in the cgroup and every cgroup below it, ascending; those of a cgroup removed meanwhile are left out.</summary>
    public List<int> Processes(string cgroupPath) => ProcessesBelow(DirectoryOf(cgroupPath));

    /// <summary>The cgroup (relative path) whose id is <paramref name="id"/>, or null: walks the whole hierarchy.</summary>
    public string? FindById(ulong id) => Walk().FirstOrDefault(p => Libc.InodeOf(DirectoryOf(p)) == id);

    /// <summary>
    /// The outermost cgroup whose own name names job <paramref name="jobId"/>
    /// (<see cref="CgroupJobs.NamedBy"/>: a person who names systemd:UNIT means
    /// that unit, named in the policy or not), or null: walks the whole hierarchy.
    /// </summary>
    public string? FindJob(string jobId) =>
        Walk().Where(p => CgroupJobs.NamedBy(p)?.Id == jobId).MinBy(p => p.Length);

    /// <summary>Writes a control file; a failure is one line naming the file and the value.</summary>
    private static void Write(string file, string value)
    {
        if (!TryWrite(file, value, out string error))
            throw new SensorException($"cannot write {value} to {file}: {error}");
    }

    private static bool TryWrite(string file, string value, out string error)
    {
        try
        {
            File.WriteAllText(file, value);
            error = "";
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = e.Message;
            return false;
        }
    }

    internal static List<int> ProcessesBelow(string dir)
    {
        var pids = new List<int>();
        try
        {
            foreach (string line in File.ReadLines(Path.Join(dir, ProcsFile)))
            {
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                    pids.Add(pid);
            }
            foreach (string child in Directory.EnumerateDirectories(dir))
                pids.AddRange(ProcessesBelow(child));
        }
        catch (IOException)
        {
            // removed meanwhile
        }
        pids.Sort();
        return pids;
    }

    /// <summary>Every cgroup, as a path relative to the mount, from "/" down.</summary>
    private IEnumerable<string> Walk()
    {
        var pending = new Stack<string>();
        pending.Push("/");
        while (pending.Count > 0)
        {
            string relative = pending.Pop();
            yield return relative;
            string[] children;
            try
            {
                children = Directory.GetDirectories(DirectoryOf(relative));
            }
            catch (IOException)
            {
                continue;
            }
            foreach (string child in children)
                pending.Push(relative.TrimEnd('/') + "/" + Path.GetFileName(child));
        }
    }
}
