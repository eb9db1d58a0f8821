using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// Puts the policy's [[confine]] sections into the kernel (bpf/confine.bpf.c)
/// and the jobs they select with them: a cgroup job by its own cgroup, a
/// launcher's tree by its processes (the kernel keeps the tree from fork,
/// and starts the tree of a launcher named by comm at its exec by itself).
/// Jobs are judged once each, as the sensor first sees them: at start from
/// /proc, then at each exec.
/// </summary>
public sealed partial class Confinement : IDisposable
{
    private readonly ConfineKernel kernel;
    private readonly string cgroupRoot;
    private readonly HashSet<string> judgedJobs = [];
    private readonly Dictionary<string, uint?> userIds = [];
    private readonly Dictionary<string, uint?> groupIds = [];
    private readonly Dictionary<uint, ConfinedJob> jobs = [];
    private readonly Dictionary<ulong, string> cgroupIds = [];

    private Confinement(ConfineRules rules, ConfineKernel kernel, string cgroupRoot, ExecConfinement exec)
    {
        Rules = rules;
        this.kernel = kernel;
        this.cgroupRoot = cgroupRoot;
        Exec = exec;
        acts = new ConfineActReader(kernel.ActsFd);
        classHashes = HashClassPrograms(rules, exec);
        Approvals = rules.Sections.Any(s => s.Mode == ConfineMode.Ask) ? new Approvals(kernel, JobAlive) : null;
    }

    /// <summary>The approval gate, when a section is in ask mode; null otherwise.</summary>
    public Approvals? Approvals { get; }

    /// <summary>Own rule sets of the cgroup jobs this sensor confined: the job's cgroup directory and its id, to tell when it is gone.</summary>
    private readonly Dictionary<uint, (string Directory, ulong Id)> cgroupOfSet = [];

    /// <summary>Own rule sets of cgroup jobs by job id, for a process's set.</summary>
    private readonly Dictionary<string, uint> setOfCgroupJob = new(StringComparer.Ordinal);

    /// <summary>Whether the job with own rule set <paramref name="set"/> still runs: its cgroup is there, or the kernel keeps a process of its tree.</summary>
    public bool JobAlive(uint set)
    {
        if (cgroupOfSet.TryGetValue(set, out (string Directory, ulong Id) cgroup))
            return Libc.InodeOf(cgroup.Directory) == cgroup.Id;
        // One walk of confine_tgids a second, whatever the number of approvals asking.
        long now = Libc.NowNs(Libc.ClockBoottime);
        if (now - treeSetsReadNs >= 1_000_000_000)
        {
            treeSets = [.. kernel.Processes().Select(p => p.Job.Job)];
            treeSetsReadNs = now;
        }
        return treeSets.Contains(set);
    }

    private HashSet<uint> treeSets = [];
    private long treeSetsReadNs = long.MinValue / 2;

    /// <summary>The own rule set of the job <paramref name="process"/> is confined in; 0 when none is known.</summary>
    public uint JobSetOf(ProcessEntry process) =>
        process.CgroupJob is { } job ? setOfCgroupJob.GetValueOrDefault(job.Id)
        : kernel.TreeJobOf(process.Pid, process.StartTicks)?.Job ?? 0;

    /// <summary>The sections as the kernel has them.</summary>
    public ConfineRules Rules { get; }

    /// <summary>The pinned maps, for reading denials.</summary>
    public ConfineKernel Kernel => kernel;

    /// <summary>The jobs this sensor confined, by their own rule set (the kernel's name for a job).</summary>
    public IReadOnlyDictionary<uint, ConfinedJob> Jobs => jobs;

    /// <summary>
    /// Attaches confinement at <paramref name="attachAt"/> (the cgroup v2 root in
    /// production) unless it is pinned already, and writes every section's rules
    /// and launchers; null when the policy has no [[confine]] section (nothing is
    /// attached). Throws <see cref="SensorException"/> when the kernel refuses.
    /// </summary>
    public static Confinement? Start(Policy policy, string cgroupRoot, string? attachAt = null)
    {
        if (policy.Confine.Count == 0)
            return null;
        var rules = new ConfineRules(policy);
        ConfineKernel kernel = ConfineKernel.Ensure(attachAt ?? cgroupRoot);
        try
        {
            for (int i = 0; i < rules.Sets.Count; i++)
            {
                // Names and resolvers first: an allow by name is read only once both are there.
                kernel.ReplaceNames((uint)i + 1, ConfineRules.NamesOf(rules.Sections[i]));
                kernel.ReplaceResolvers((uint)i + 1, [.. rules.Sections[i].Resolvers.Select(ConfineRules.Mapped)]);
                kernel.ReplaceSet((uint)i + 1, rules.Sets[i]);
            }
            // Sets of sections a previous policy had beyond these: emptied.
            foreach (uint stale in kernel.Entries().Select(e => e.Key.Set).Where(s => s > rules.Sets.Count && s < ConfineRules.FirstJobSet).Distinct().ToList())
            {
                kernel.ReplaceSet(stale, []);
                kernel.ReplaceNames(stale, []);
                kernel.ReplaceResolvers(stale, []);
            }
            foreach ((string comm, ConfineSection section) in rules.LauncherNames())
                kernel.ConfineLauncher(comm, rules.KernelJob(section, 0));
            // Exec rules first, then the kinds: a job the kernel confines at its first exec is judged by this policy's rules.
            var exec = ExecConfinement.Resolve(rules.Sections);
            exec.WriteTo(kernel);
            kernel.ReplaceKinds(rules.KernelKinds());
            return new Confinement(rules, kernel, cgroupRoot, exec);
        }
        catch
        {
            kernel.Dispose();
            throw;
        }
    }

    /// <summary>Judges every process known now (seeded from /proc): each job's first process seen decides for the job.</summary>
    public void Seed(IEnumerable<ProcessEntry> processes)
    {
        foreach (ProcessEntry p in processes)
            OnProcess(p);
    }

    /// <summary>
    /// Confines the job of <paramref name="process"/> when a section selects it and it
    /// is not confined yet; returns the section, or null. A launcher a section names
    /// by path starts its tree here (by comm the kernel started it at exec).
    /// </summary>
    public ConfineSection? OnProcess(ProcessEntry process)
    {
        if (process.IsKernelThread)
            return null;
        if (process.CgroupJob is { } job)
        {
            if (!judgedJobs.Add(job.Id))
                return null;
            ConfineSection? section = Rules.SectionFor(job.Id, null, process.Uid, GroupOf(process), UserId, GroupId);
            if (section is null || Libc.InodeOf(Path.Join(cgroupRoot, job.CgroupPath)) is not { } id)
                return null;
            uint set = ConfineRules.CgroupJobSet(id);
            // Programs attached by an earlier sensor marked every socket accepted since: nothing to find.
            bool marked = ConfineKernel.MarksAcceptedSockets(id);
            try
            {
                kernel.ConfineCgroup(id, Cgroupfs.LevelOf(job.CgroupPath), Rules.KernelJob(section, set));
                // Attached first, then found: a socket accepted in between is marked by the kernel or found here.
                if (!marked)
                    MarkAcceptedBefore(job.Id, Path.Join(cgroupRoot, job.CgroupPath));
            }
            catch (SensorException)
            {
                // Gone already, or its programs would not attach: tried again at the job's next exec.
                judgedJobs.Remove(job.Id);
                return null;
            }
            cgroupIds[id] = job.Id;
            jobs[set] = new ConfinedJob(job.Id, section);
            cgroupOfSet[set] = (Path.Join(cgroupRoot, job.CgroupPath), id);
            setOfCgroupJob[job.Id] = set;
            cgroupSections[job.Id] = section;
            return section;
        }
        string key = $"{JobMembership.TreeKind}:{process.Pid}:{process.StartTicks}";
        if (judgedJobs.Contains(key))
            return null;
        ConfineSection? tree = Rules.Sections.FirstOrDefault(s => s.Select.Launchers.Any(l => ConfineRules.LauncherIs(l, process)));
        tree ??= process.JobRootPid == 0 ? null : Rules.SectionFor(process.Membership.Id, null, process.Uid, GroupOf(process), UserId, GroupId);
        if (tree is null)
            return null;
        judgedJobs.Add(key);
        uint own = kernel.ConfineProcess(process.Pid, process.StartTicks, Rules.KernelJob(tree, ConfineRules.TreeJobSet(process.Pid)));
        jobs[own] = new ConfinedJob(process.Membership.Id ?? $"{JobMembership.TreeKind}:{process.EntityId}", tree);
        return tree;
    }

    /// <summary>
    /// Lets go of confined job cgroups that are gone (<see cref="ConfineKernel.ReleaseGone"/>),
    /// and of the root programs once no launcher tree can be confined; a job of the same
    /// id made later is judged afresh. Throws <see cref="SensorException"/> when the cgroup hierarchy cannot be opened.
    /// </summary>
    public void ReleaseGone()
    {
        foreach (ulong id in kernel.ReleaseGone())
        {
            if (cgroupIds.Remove(id, out string? job))
                judgedJobs.Remove(job);
            jobs.Remove(ConfineRules.CgroupJobSet(id));
        }
    }

    /// <summary>
    /// Told each line about a confinement that runs short of the whole (a job's accepted
    /// sockets not all found: those are judged as outbound), from the thread that confines.
    /// </summary>
    public Action<string>? Say { get; set; }

    /// <summary>Marks the sockets the job in <paramref name="directory"/> accepted before it was confined (<see cref="AcceptedBeforeConfinement"/>).</summary>
    private void MarkAcceptedBefore(string jobId, string directory)
    {
        var shortfalls = new List<string>();
        AcceptedBeforeConfinement.Mark(kernel, directory, shortfalls);
        foreach (string s in shortfalls)
            Say?.Invoke($"guard watch: confining {jobId}: {s}; those are judged as outbound");
    }

    private uint? UserId(string name)
    {
        if (!userIds.TryGetValue(name, out uint? id))
            userIds[name] = id = ConfineRules.IdFromFile(name, "/etc/passwd");
        return id;
    }

    private uint? GroupId(string name)
    {
        if (!groupIds.TryGetValue(name, out uint? id))
            groupIds[name] = id = ConfineRules.IdFromFile(name, "/etc/group");
        return id;
    }

    /// <summary>The real gid from /proc/PID/status; uint.MaxValue when it cannot be read (matches no group).</summary>
    private static uint GroupOf(ProcessEntry process)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{process.Pid}/status"))
            {
                if (line.StartsWith("Gid:", StringComparison.Ordinal))
                    return uint.TryParse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture, out uint gid) ? gid : uint.MaxValue;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // gone: no group
        }
        return uint.MaxValue;
    }

    /// <summary>Closes the map descriptors; the pinned confinement stays in force.</summary>
    public void Dispose()
    {
        acts.Dispose();
        kernel.Dispose();
    }
}

/// <summary>A job a sensor confined: its id as Guard names jobs (slurm:N, tree:ENTITY_ID) and the section confining it.</summary>
public sealed record ConfinedJob(string JobId, ConfineSection Section);
