using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// The exec and GPU side of confinement in user space: the kernel's denials
/// made events, and what only user space can judge, a program's SHA-256: a
/// program a section denies by hash, or a copy of a class program (same
/// bytes, another inode and name), is killed by the sensor once its hash is
/// known, and its inode is handed to the kernel so its next exec dies at
/// sched_process_exec.
/// </summary>
public sealed partial class Confinement
{
    private readonly ConfineActReader acts;
    private readonly List<GuardConfineAct> pendingActs = [];
    private readonly Dictionary<string, ConfineSection> cgroupSections = new(StringComparer.Ordinal);

    /// <summary>Files the sensor handed to the kernel after a hash matched, per rule set: the deny entries that matched.</summary>
    private readonly Dictionary<(FileId File, uint Set), List<string>> learnt = [];

    /// <summary>SHA-256 of each class program found at start, with its class bits: a copy has the same bytes.</summary>
    private readonly Dictionary<string, uint> classHashes;

    /// <summary>The exec and GPU rules as the kernel has them.</summary>
    public ExecConfinement Exec { get; private set; }

    /// <summary>
    /// Finds the class programs and the files path rules name again (a package
    /// upgrade replaces /usr/bin/bash with a new inode) and writes them; the files
    /// learnt by hash are kept. Call on a policy reload. Throws <see cref="SensorException"/> when the kernel refuses.
    /// </summary>
    public void ResolveFilesAgain()
    {
        Exec = ExecConfinement.Resolve(Rules.Sections);
        Exec.WriteTo(kernel);
        foreach ((FileId file, uint set) in learnt.Keys)
        {
            kernel.PutFile(new ConfineExecFile(file, set, GuardConfineExecRules.FileDeny));
            GuardConfineExecRules rules = kernel.ExecRules(set);
            kernel.WriteExecRules(set, rules with { Deny = rules.Deny | (uint)ExecClassBits.File });
        }
    }

    /// <summary>Whether any section needs a program's hash (a sha256 rule, or a class whose copies only a hash shows).</summary>
    public bool NeedsHashes => Rules.Sections.Any(NeedsHash);

    private bool NeedsHash(ConfineSection s) =>
        s.Exec is { } e && e.Deny.Any(r => r.Sha256 is not null || (r.Class is { } c && (ExecConfinement.BitOf(c) & HashedClasses) != 0 && classHashes.Count > 0));

    /// <summary>Classes whose programs are known by their bytes as well (a world-writable tree and a memfd are places, not programs).</summary>
    private const ExecClassBits HashedClasses = ExecClassBits.Shells | ExecClassBits.Interpreters | ExecClassBits.PackageManagers | ExecClassBits.Compilers | ExecClassBits.Downloaders;

    private static Dictionary<string, uint> HashClassPrograms(ConfineRules rules, ExecConfinement exec)
    {
        uint denied = rules.Sections.Where(s => s.Exec is not null).SelectMany(s => s.Exec!.Deny).Where(r => r.Class is not null)
            .Aggregate(0u, (bits, r) => bits | (uint)ExecConfinement.BitOf(r.Class!.Value)) & (uint)HashedClasses;
        var hashes = new Dictionary<string, uint>(StringComparer.Ordinal);
        if (denied == 0)
            return hashes;
        foreach (string path in ExecConfinement.SystemDirectories.SelectMany(ClassProgramsIn).Distinct(StringComparer.Ordinal))
        {
            uint bits = ExecConfinement.ClassesOfName(Path.GetFileName(path)) & denied;
            if (bits == 0)
                continue;
            try
            {
                using FileStream f = File.OpenRead(path);
                if (f.Length > ExecutableHashes.MaxBytes)
                    continue;
                string sha = Sha256.HexOf(f);
                hashes[sha] = hashes.GetValueOrDefault(sha) | bits;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone or unreadable: its inode still counts in the kernel
            }
        }
        return hashes;
    }

    private static IEnumerable<string> ClassProgramsIn(string dir)
    {
        try
        {
            return [.. Directory.EnumerateFiles(dir).Where(p => ExecConfinement.ClassesOfName(Path.GetFileName(p)) != 0)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>The section confining <paramref name="process"/>: its cgroup job's, else its launcher tree's as the kernel keeps it; null when none.</summary>
    public ConfineSection? SectionOf(ProcessEntry process)
    {
        if (process.CgroupJob is { } job)
            return cgroupSections.GetValueOrDefault(job.Id);
        return kernel.TreeJobOf(process.Pid, process.StartTicks) is { } tree ? Rules.SectionOfSet(tree.Section) : null;
    }

    /// <summary>Whether the exec of <paramref name="process"/> must be hashed to be judged.</summary>
    public bool WantsHash(ProcessEntry process) =>
        (NeedsHashes && SectionOf(process) is { } s && NeedsHash(s))
        || (Approvals is { HasProgramApprovals: true } gate && gate.ApprovedSha256(JobSetOf(process), process.ExecutableFile) is not null);

    /// <summary>
    /// The program of <paramref name="process"/> (exec'd at <paramref name="execNs"/>, CLOCK_BOOTTIME)
    /// hashed to <paramref name="sha256"/>: when its section denies that hash, or a class whose
    /// program has those bytes, and allows it by nothing, the process is killed (not in audit)
    /// and the file's inode goes to the kernel; returns the denial, or null.
    /// </summary>
    public ProcessDenialEvent? OnHash(ProcessEntry process, string sha256, long execNs)
    {
        // An approved program whose bytes are no longer those approved (rewritten in place): killed, its approval ended.
        if (Approvals is { HasProgramApprovals: true } gate && process.ExecutableFile is { } approvedFile
            && gate.ApprovedSha256(JobSetOf(process), approvedFile) is { } approvedSha && approvedSha != sha256)
        {
            bool stopped = Kill(process);
            gate.EndChangedProgram(JobSetOf(process), approvedFile, sha256, Libc.NowNs(Libc.ClockBoottime));
            long at = Libc.NowNs(Libc.ClockBoottime);
            ConfineSection? s = SectionOf(process);
            return new ProcessDenialEvent
            {
                Process = process,
                TimeNs = at,
                What = "exec",
                Section = s?.Name ?? "",
                Source = s?.Source ?? "",
                Mode = "ask",
                Enforced = true,
                Killed = stopped,
                By = "hash",
                Path = process.ExecutableText,
                DeniedBy = [$"approved as sha256:{approvedSha}"],
                Sha256 = sha256,
                DelayMs = (at - execNs) / 1e6,
            };
        }
        if (!NeedsHashes || SectionOf(process) is not { Exec: { } exec } section)
            return null;
        uint classes = classHashes.GetValueOrDefault(sha256);
        var deniedBy = new List<string>();
        foreach (ExecRule r in exec.Deny)
        {
            if (r.Sha256 == sha256 || (r.Class is { } c && (classes & (uint)ExecConfinement.BitOf(c)) != 0))
                deniedBy.Add(r.Text);
        }
        if (deniedBy.Count == 0 || KernelDenied(process, section) || Approvals?.ProgramApproved(JobSetOf(process), process.ExecutableFile) == true || exec.Allow.Any(r => r.Sha256 == sha256 || (r.Class is { } c && (classes & (uint)ExecConfinement.BitOf(c)) != 0)
            || (r.PathGlob is { } glob && ConfineParser.GlobMatches(glob, process.ExecutableText))))
            return null;
        bool enforced = section.Mode != ConfineMode.Audit;
        bool killed = enforced && Kill(process);
        uint set = Rules.SetOf(section);
        if (enforced && process.ExecutableFile is { } file)
        {
            // Its next exec, by any name, dies in the kernel.
            kernel.PutFile(new ConfineExecFile(file, set, GuardConfineExecRules.FileDeny));
            learnt[(file, set)] = deniedBy;
            GuardConfineExecRules rules = kernel.ExecRules(set);
            if ((rules.Deny & (uint)ExecClassBits.File) == 0)
                kernel.WriteExecRules(set, rules with { Deny = rules.Deny | (uint)ExecClassBits.File });
        }
        long now = Libc.NowNs(Libc.ClockBoottime);
        return new ProcessDenialEvent
        {
            Process = process,
            TimeNs = now,
            What = "exec",
            Section = section.Name,
            Source = section.Source,
            Mode = ModeName(section.Mode),
            Enforced = enforced,
            Killed = killed,
            By = "hash",
            Path = process.ExecutableText,
            Classes = ClassNames(classes),
            DeniedBy = deniedBy,
            Sha256 = sha256,
            DelayMs = (now - execNs) / 1e6,
        };
    }

    /// <summary>Whether the kernel judged this program denied at its exec by itself (its inode or name is a denied class's): reported by the kernel, not again.</summary>
    private bool KernelDenied(ProcessEntry process, ConfineSection section)
    {
        uint deny = Exec.Rules[(int)Rules.SetOf(section) - 1].Deny;
        uint bits = 0;
        if (process.ExecutableFile is { } file)
            bits |= Exec.Files.Where(f => f.Set == 0 && f.File == file).Aggregate(0u, (b, f) => b | f.Value);
        foreach (string name in new[] { Path.GetFileName(process.ExecutableText), process.NameText })
            bits |= Exec.Names.GetValueOrDefault(name);
        return (bits & deny) != 0;
    }

    /// <summary>SIGKILL through a pidfd, once the pid is still the process that exec'd (its start matches).</summary>
    /// <summary>
    /// The process running a program denied by its bytes, and everything it forked in the
    /// milliseconds the hash took (a copy of a shell runs until its hash is in): stopped
    /// first, then killed, by recorded lineage, or what it left behind when it has exited.
    /// True when any process was killed.
    /// </summary>
    private static bool Kill(ProcessEntry process) =>
        ProcessKiller.KillTreeOf(new ProcessTarget(process.Pid, process.StartTicks)).Done;

    /// <summary>
    /// The kernel's denied execs and GPU opens since the last call, as events, each
    /// with its process from <paramref name="table"/> (null when the table never knew it).
    /// </summary>
    public void DrainDenials(ProcessTable table, List<ProcessDenialEvent> into)
    {
        pendingActs.Clear();
        acts.Drain(pendingActs);
        foreach (GuardConfineAct a in pendingActs)
        {
            ProcessDenialEvent denial = EventOf(a, table.Identify((int)a.Tgid, a.StartTimeNs));
            // Under ask a killed exec raises a request (a retry while it waits only counts).
            if (Approvals is { } gate && a.Mode == (uint)ConfineKernelMode.Ask && a.Kind == (uint)ConfineActKind.Exec && Rules.SectionOfSet(a.Section) is { } section)
                gate.OnProgramDenied(denial, a.Job, new FileId(a.Device, a.Inode), section, Libc.NowNs(Libc.ClockBoottime));
            into.Add(denial);
        }
    }

    private ProcessDenialEvent EventOf(in GuardConfineAct a, ProcessEntry? process)
    {
        ConfineSection? section = Rules.SectionOfSet(a.Section);
        bool exec = a.Kind == (uint)ConfineActKind.Exec;
        var mode = (ConfineKernelMode)a.Mode;
        ReadOnlySpan<byte> path = a.Path;
        return new ProcessDenialEvent
        {
            Process = process,
            TimeNs = (long)a.TimeNs,
            What = exec ? "exec" : "gpu",
            Section = section?.Name ?? $"rule set {a.Section}",
            Source = section?.Source ?? "",
            Mode = mode switch { ConfineKernelMode.Audit => "audit", ConfineKernelMode.Ask => "ask", _ => "enforce" },
            Enforced = mode != ConfineKernelMode.Audit,
            Killed = a.Killed != 0,
            Path = exec ? System.Text.Encoding.UTF8.GetString(path[..(int)Math.Min(a.PathLength, (uint)GuardConfineAct.PathCapacity)]) : null,
            Classes = exec ? ClassNames(a.Classes) : [],
            DeniedBy = exec ? learnt.GetValueOrDefault((new FileId(a.Device, a.Inode), a.Section)) ?? DeniedByOf(section, a.Denied) : [],
            Device = exec ? null : (a.Major, a.Minor),
        };
    }

    /// <summary>The section's deny entries that the kernel's denied bits stand for.</summary>
    private static List<string> DeniedByOf(ConfineSection? section, uint denied)
    {
        if (section?.Exec is not { } exec)
            return [.. ClassNames(denied)];
        return [.. exec.Deny.Where(r => r.Class is { } c ? (denied & (uint)ExecConfinement.BitOf(c)) != 0 : (denied & (uint)ExecClassBits.File) != 0).Select(r => r.Text)];
    }

    /// <summary>The policy's names of the classes in <paramref name="bits"/>, "file" for one the section names itself.</summary>
    public static List<string> ClassNames(uint bits)
    {
        var names = ConfineParser.ClassNames.Where(kv => (bits & (uint)ExecConfinement.BitOf(kv.Value)) != 0).Select(kv => kv.Key).ToList();
        if ((bits & (uint)ExecClassBits.File) != 0)
            names.Add("file");
        return names;
    }

    private static string ModeName(ConfineMode mode) => mode switch { ConfineMode.Audit => "audit", ConfineMode.Ask => "ask", _ => "enforce" };
}
