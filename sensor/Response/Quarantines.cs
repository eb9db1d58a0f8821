using System.Globalization;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>Who asks for a hold, why, and what happens when its time runs out.</summary>
public sealed record QuarantineRequest
{
    public string Reason { get; init; } = "held from the command line";

    /// <summary>"cli" or the rule that asked.</summary>
    public string OrderedBy { get; init; } = "cli";

    /// <summary>The person's uid (under sudo, the one who ran sudo).</summary>
    public uint OrderedByUid { get; init; } = Libc.PersonUid();

    public TimeSpan? Timeout { get; init; }

    public QuarantineExpiry OnTimeout { get; init; } = QuarantineExpiry.None;

    /// <summary>Device files the held may not open (besides nothing: the caller passes the host's GPUs).</summary>
    public IReadOnlyList<GpuDevice> GpuDevices { get; init; } = [];
}

/// <summary>One job held in quarantine, as its pinned record and the kernel describe it now.</summary>
public sealed record HeldJob(
    ulong Id, QuarantineMode Mode, string Job, int RootPid, DateTimeOffset Since, DateTimeOffset? Deadline, QuarantineExpiry OnTimeout,
    string OrderedBy, uint OrderedByUid, string Reason, string? CgroupPath, IReadOnlyList<int> Pids)
{
    internal static HeldJob From(ulong id, GuardQuarantine record, string? cgroupPath, IReadOnlyList<int> pids) => new(
        id, record.Mode, Text(record.Job), (int)record.RootPid, Time(record.SinceNs),
        record.DeadlineNs == 0 ? null : Time(record.DeadlineNs), record.Expiry,
        Text(record.OrderedBy), record.OrderedByUid, Text(record.Reason), cgroupPath, pids);

    private static DateTimeOffset Time(ulong realtimeNs) => DateTimeOffset.FromUnixTimeMilliseconds((long)(realtimeNs / 1_000_000));

    private static string Text(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }
}

/// <summary>What a quarantine action did, or why it was refused.</summary>
public sealed record QuarantineOutcome(string Action, bool Done, string Message, IReadOnlyList<int> Pids, string? CgroupPath = null, string OrderedBy = "cli", uint OrderedByUid = 0)
{
    public static QuarantineOutcome Refused(string action, string reason, string orderedBy = "cli", uint uid = 0) => new(action, false, reason, [], null, orderedBy, uid);

    public ActionEvent Describe(ProcessEntry? process) => new()
    {
        Action = Action,
        Succeeded = Done,
        Message = Message,
        OrderedBy = OrderedBy,
        OrderedByUid = OrderedByUid,
        Pids = Pids,
        CgroupPath = CgroupPath,
        Process = process,
        TimeNs = Libc.NowNs(Libc.ClockBoottime),
        Sequence = 1,
    };
}

/// <summary>
/// Holds jobs for a person. A job with its own cgroup is frozen
/// (cgroup.freeze) and the deny programs are attached to that cgroup; a tree
/// without one is stopped with SIGSTOP and its members are held in the kernel,
/// which also holds and stops any child they fork. Either way its network
/// (new sockets, connects, sends, packets of sockets it had) and its GPU
/// device opens are denied. Nothing is ever moved out of its cgroup. The state
/// lives in pinned maps, so any guard process (a later `guard watch`, the CLI)
/// can list, release, kill or expire a hold.
/// </summary>
public sealed class Quarantines
{
    private const string Action = "quarantine";
    private readonly string cgroupRoot;

    public Quarantines(string cgroupRoot) => this.cgroupRoot = cgroupRoot;

    /// <summary>Holds <paramref name="target"/> and every descendant.</summary>
    public QuarantineOutcome HoldTree(ProcessTarget target, QuarantineRequest request)
    {
        using Pidfd? root = ProcessKiller.OpenChecked(target, out ProcfsStat stat, out string refusal);
        if (root is null)
            return Refused(refusal, request);
        using QuarantineKernel kernel = QuarantineKernel.Load();
        if (kernel.IsHeld(target.Pid, out ulong already) && kernel.Records().Any(r => r.Id == already))
            return Refused($"process {target.Pid} is held already", request);
        kernel.EnsureTreeLinks(cgroupRoot);
        foreach (GpuDevice device in request.GpuDevices)
            kernel.DenyDevice(device);
        ulong id = (ulong)Libc.NowNs(Libc.ClockRealtime) | (1UL << 63); // never a cgroup id
        string name = Encoding.UTF8.GetString(stat.Name);
        kernel.Put(id, NewRecord(QuarantineMode.Tree, 0, target.Pid, stat.StartTicks, $"tree:{target.Pid}({name})", request));
        using StoppedTree tree = StoppedTree.Stop(root, pid => kernel.HoldTgid(pid, id));
        if (tree.IncludesSelf)
        {
            Forget(kernel, id);
            return Refused($"the tree of {target.Pid} includes this guard process", request);
        }
        int sockets = 0;
        foreach (Pidfd member in tree.Members.Values)
            sockets += MarkSockets(kernel, member, id);
        int[] pids = [.. tree.Members.Keys];
        return new QuarantineOutcome(Action, true,
            $"quarantined the tree of {target.Pid} ({name}): {pids.Length} process{(pids.Length == 1 ? "" : "es")} stopped; network ({sockets} open socket{(sockets == 1 ? "" : "s")}) and GPU devices denied",
            pids, null, request.OrderedBy, request.OrderedByUid);
    }

    /// <summary>Holds the job <paramref name="jobId"/> (as events name it) through its own cgroup.</summary>
    public QuarantineOutcome HoldJob(string jobId, QuarantineRequest request)
    {
        string? path = FindJobCgroup(jobId);
        return path is null
            ? Refused($"no cgroup under {cgroupRoot} belongs to job {jobId}", request)
            : HoldJob(new Job(jobId, "", path), request);
    }

    /// <summary>Holds a job through its own cgroup: frozen, with the deny programs attached there.</summary>
    public QuarantineOutcome HoldJob(Job job, QuarantineRequest request)
    {
        if (ProcessKiller.JobRefusal(job) is { } refusal)
            return Refused(refusal, request);
        string dir = Path.Join(cgroupRoot, job.CgroupPath);
        string freeze = Path.Join(dir, "cgroup.freeze");
        if (!File.Exists(freeze))
            return Refused($"{freeze} does not exist (the cgroup v2 freezer needs Linux 5.2)", request);
        if (CgroupProcesses(dir).Count == 0)
            return Refused($"job {job.Id} ({job.CgroupPath}) has no processes", request);
        ulong id = Libc.InodeOf(dir) ?? 0;
        using QuarantineKernel kernel = QuarantineKernel.Load();
        if (kernel.Records().Any(r => r.Id == id))
            return Refused($"job {job.Id} is held already", request);
        foreach (GpuDevice device in request.GpuDevices)
            kernel.DenyDevice(device);
        kernel.Put(id, NewRecord(QuarantineMode.Cgroup, id, 0, 0, job.Id, request));
        // Deny first: nothing leaves while the freeze settles.
        kernel.AttachToCgroup(id, dir);
        WriteControl(freeze, "1");
        bool frozen = WaitFrozen(dir, TimeSpan.FromSeconds(2));
        int[] pids = [.. CgroupProcesses(dir)];
        return new QuarantineOutcome(Action, true,
            $"quarantined job {job.Id}: cgroup {job.CgroupPath} {(frozen ? "frozen" : "freezing (not settled after 2 s)")}, {pids.Length} process{(pids.Length == 1 ? "" : "es")}; network and GPU devices denied",
            pids, job.CgroupPath, request.OrderedBy, request.OrderedByUid);
    }

    /// <summary>Every hold, with its live members. Holds whose processes are all gone are ended on the way.</summary>
    public IReadOnlyList<HeldJob> List()
    {
        using QuarantineKernel? kernel = QuarantineKernel.OpenPinned();
        if (kernel is null)
            return [];
        var held = new List<HeldJob>();
        foreach ((ulong id, GuardQuarantine record) in kernel.Records())
        {
            HeldJob job = Describe(kernel, id, record);
            if (job.Pids.Count == 0)
                End(kernel, job);
            else
                held.Add(job);
        }
        CleanUp(kernel);
        return held;
    }

    /// <summary>The hold that has <paramref name="pid"/> among its members, if any.</summary>
    public HeldJob? Holding(int pid) => List().FirstOrDefault(h => h.Pids.Contains(pid));

    /// <summary>Undoes a hold exactly: deny programs off, then the processes thawed or continued.</summary>
    public QuarantineOutcome Release(HeldJob job, string orderedBy = "cli", uint? orderedByUid = null)
    {
        uint uid = orderedByUid ?? Libc.PersonUid();
        using QuarantineKernel kernel = QuarantineKernel.OpenPinned() ?? throw new SensorException("nothing is quarantined");
        List<int> resumed = End(kernel, job);
        CleanUp(kernel);
        return new QuarantineOutcome("release", true, $"released {job.Job}: {resumed.Count} process{(resumed.Count == 1 ? "" : "es")} running again, network and GPU allowed", resumed, job.CgroupPath, orderedBy, uid);
    }

    /// <summary>Ends a hold by killing every member (a cgroup through cgroup.kill), then removes what held them.</summary>
    public QuarantineOutcome Kill(HeldJob job, string orderedBy = "cli", uint? orderedByUid = null)
    {
        uint uid = orderedByUid ?? Libc.PersonUid();
        using QuarantineKernel kernel = QuarantineKernel.OpenPinned() ?? throw new SensorException("nothing is quarantined");
        var killed = new List<int>();
        if (job.Mode == QuarantineMode.Cgroup && job.CgroupPath is { } path)
        {
            WriteControl(Path.Join(cgroupRoot, path, "cgroup.kill"), "1");
            killed.AddRange(job.Pids);
        }
        else
        {
            foreach (int pid in job.Pids)
            {
                // A member stays in the map until it exits, so the pid is still that member.
                using Pidfd? member = Pidfd.TryOpen(pid, out _);
                if (member?.Signal(StoppedTree.SigKill) == 0)
                    killed.Add(pid);
            }
        }
        WaitGone(kernel, job, TimeSpan.FromSeconds(2));
        End(kernel, job, resume: false);
        CleanUp(kernel);
        return new QuarantineOutcome("kill-quarantined", killed.Count > 0, $"killed {job.Job}: {killed.Count} process{(killed.Count == 1 ? "" : "es")}", killed, job.CgroupPath, orderedBy, uid);
    }

    /// <summary>Kills or releases the holds whose timeout has passed, as each asked.</summary>
    public IReadOnlyList<QuarantineOutcome> Expire(DateTimeOffset now)
    {
        var outcomes = new List<QuarantineOutcome>();
        foreach (HeldJob job in List())
        {
            if (job.Deadline is not { } deadline || deadline > now)
                continue;
            string by = $"timeout of {job.OrderedBy}";
            outcomes.Add(job.OnTimeout == QuarantineExpiry.Kill ? Kill(job, by, job.OrderedByUid) : Release(job, by, job.OrderedByUid));
        }
        return outcomes;
    }

    private HeldJob Describe(QuarantineKernel kernel, ulong id, in GuardQuarantine record)
    {
        if (record.Mode == QuarantineMode.Tree)
            return HeldJob.From(id, record, null, [.. kernel.TgidsOf(id).Where(pid => Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}")).Order()]);
        string? path = FindCgroup(id);
        return HeldJob.From(id, record, path, path is null ? [] : CgroupProcesses(Path.Join(cgroupRoot, path)));
    }

    /// <summary>The same hold as the kernel has it now.</summary>
    private HeldJob? Refresh(QuarantineKernel kernel, HeldJob job) =>
        kernel.Records().Where(r => r.Id == job.Id).Select(r => Describe(kernel, r.Id, r.Record)).FirstOrDefault();

    /// <summary>Removes a hold's kernel state; resumes its processes unless they are being killed.</summary>
    private List<int> End(QuarantineKernel kernel, HeldJob job, bool resume = true)
    {
        // The record first: from here the kernel denies none of them.
        kernel.Remove(job.Id);
        var resumed = new List<int>();
        if (job.Mode == QuarantineMode.Cgroup)
        {
            QuarantineKernel.DetachFromCgroup(job.Id);
            if (job.CgroupPath is { } path && File.Exists(Path.Join(cgroupRoot, path, "cgroup.freeze")))
            {
                WriteControl(Path.Join(cgroupRoot, path, "cgroup.freeze"), "0");
                resumed.AddRange(job.Pids);
            }
            return resumed;
        }
        foreach (int pid in kernel.TgidsOf(job.Id))
        {
            kernel.ForgetTgid(pid);
            if (!resume)
                continue;
            using Pidfd? member = Pidfd.TryOpen(pid, out _);
            if (member?.Signal(StoppedTree.SigCont) == 0)
                resumed.Add(pid);
        }
        return resumed;
    }

    private static void Forget(QuarantineKernel kernel, ulong id)
    {
        kernel.Remove(id);
        foreach (int pid in kernel.TgidsOf(id))
            kernel.ForgetTgid(pid);
        CleanUp(kernel);
    }

    /// <summary>With no tree hold left the root programs go; with no hold at all, every pin.</summary>
    private static void CleanUp(QuarantineKernel kernel)
    {
        List<(ulong Id, GuardQuarantine Record)> left = kernel.Records();
        if (left.Count == 0)
            QuarantineKernel.RemoveAll();
        else if (left.All(r => r.Record.Mode != QuarantineMode.Tree))
            QuarantineKernel.RemoveTreeLinks();
    }

    private void WaitGone(QuarantineKernel kernel, HeldJob job, TimeSpan wait)
    {
        DateTime deadline = DateTime.UtcNow + wait;
        while (DateTime.UtcNow < deadline && Refresh(kernel, job) is { Pids.Count: > 0 })
            Thread.Sleep(10);
    }

    /// <summary>Marks every socket the process has open, so egress drops what it would still send on them.</summary>
    private static int MarkSockets(QuarantineKernel kernel, Pidfd process, ulong id)
    {
        int marked = 0;
        foreach (FileDescriptor socket in process.DuplicateSockets())
        {
            using (socket)
            {
                if (kernel.MarkSocket(socket.Fd, id))
                    marked++;
            }
        }
        return marked;
    }

    private static GuardQuarantine NewRecord(QuarantineMode mode, ulong cgroupId, int rootPid, long rootStartTicks, string job, QuarantineRequest request)
    {
        long now = Libc.NowNs(Libc.ClockRealtime);
        var record = new GuardQuarantine
        {
            SinceNs = (ulong)now,
            DeadlineNs = request.Timeout is { } t ? (ulong)(now + (long)t.TotalNanoseconds) : 0,
            CgroupId = cgroupId,
            RootPid = (uint)rootPid,
            RootStartTicks = (ulong)rootStartTicks,
            OrderedByUid = request.OrderedByUid,
            Mode = mode,
            Expiry = request.Timeout is null ? QuarantineExpiry.None : request.OnTimeout,
        };
        Fill(record.Job, job);
        Fill(record.OrderedBy, request.OrderedBy);
        Fill(record.Reason, request.Reason);
        return record;
    }

    /// <summary>Copies as much of <paramref name="text"/> as fits, whole characters only, NUL-terminated.</summary>
    private static void Fill(Span<byte> field, string text)
    {
        field.Clear();
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        int length = Math.Min(bytes.Length, field.Length - 1);
        while (length > 0 && length < bytes.Length && (bytes[length] & 0xC0) == 0x80)
            length--; // never cut inside a character
        bytes.AsSpan(0, length).CopyTo(field);
    }

    private static QuarantineOutcome Refused(string reason, QuarantineRequest request) => QuarantineOutcome.Refused(Action, reason, request.OrderedBy, request.OrderedByUid);

    /// <summary>Writes a cgroup control file; a failure is one line naming the file.</summary>
    private static void WriteControl(string file, string value)
    {
        try
        {
            File.WriteAllText(file, value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SensorException($"cannot write {value} to {file}: {e.Message}");
        }
    }

    private static bool WaitFrozen(string dir, TimeSpan wait)
    {
        DateTime deadline = DateTime.UtcNow + wait;
        do
        {
            if (File.ReadLines(Path.Join(dir, "cgroup.events")).Contains("frozen 1"))
                return true;
            Thread.Sleep(5);
        }
        while (DateTime.UtcNow < deadline);
        return false;
    }

    /// <summary>Processes in a cgroup and every cgroup below it.</summary>
    private static List<int> CgroupProcesses(string dir)
    {
        var pids = new List<int>();
        try
        {
            foreach (string line in File.ReadLines(Path.Join(dir, "cgroup.procs")))
            {
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                    pids.Add(pid);
            }
            foreach (string child in Directory.EnumerateDirectories(dir))
                pids.AddRange(CgroupProcesses(child));
        }
        catch (IOException)
        {
            // removed meanwhile
        }
        pids.Sort();
        return pids;
    }

    /// <summary>The cgroup (relative path) whose directory has inode <paramref name="id"/>: cgroup v2 ids are inode numbers.</summary>
    private string? FindCgroup(ulong id) => Walk().FirstOrDefault(p => Libc.InodeOf(Path.Join(cgroupRoot, p)) == id);

    /// <summary>The outermost cgroup that names job <paramref name="jobId"/>.</summary>
    private string? FindJobCgroup(string jobId) =>
        Walk().Where(p => CgroupJobs.FromPath(p)?.Id == jobId).Select(p => CgroupJobs.FromPath(p)!.CgroupPath).MinBy(p => p.Length);

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
                children = Directory.GetDirectories(Path.Join(cgroupRoot, relative));
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
