using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// Turns the kernel's exec verdict (a known miner name, killed or not) into
/// an alert with its evidence: the executable's path (its SHA-256 joins once
/// hashed, <see cref="WithSha256"/>), the command line, the working directory,
/// the lineage and the job root. Names are whole ("xmrig") or families of
/// release names ("cpuminer-*"), matched as the kernel matches them
/// (<see cref="MinerNamePattern"/>); a program run through the dynamic loader,
/// which the kernel knows only as the loader, is judged here by the name of
/// the program the loader runs.
/// </summary>
public sealed class KnownMinerFindings
{
    /// <summary>ld.so's options that take a value in the next argument (ld.so(8), glibc 2.3x).</summary>
    private static readonly HashSet<string> LoaderOptionsWithValue =
        ["--library-path", "--inhibit-rpath", "--audit", "--preload", "--argv0", "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"];

    private readonly (MinerNamePattern Pattern, int KeyLength, bool Anywhere, bool InJobs)[] names;
    private readonly Policy policy;

    public KnownMinerFindings(Policy policy)
    {
        this.policy = policy;
        var byPattern = new Dictionary<MinerNamePattern, (bool Anywhere, bool InJobs)>();
        foreach (string name in policy.Indicators.MinerNames)
            byPattern[MinerNamePattern.Parse(name)] = (true, false);
        foreach (string name in policy.Indicators.MinerNamesInJobs)
            byPattern[MinerNamePattern.Parse(name)] = (byPattern.GetValueOrDefault(MinerNamePattern.Parse(name)).Anywhere, true);
        names = [.. byPattern.Select(p => (p.Key, p.Key.KeyBytes().Length, p.Value.Anywhere, p.Value.InJobs))];
    }

    /// <summary>
    /// The rule <paramref name="name"/> falls under, as the kernel's lookup picks it:
    /// the longest whole name or family stem it matches decides, acted on anywhere
    /// or, for a name real programs share, inside a job only. Null: neither.
    /// </summary>
    public Detector? RuleFor(string name, bool inJob)
    {
        (MinerNamePattern Pattern, int KeyLength, bool Anywhere, bool InJobs)? best = null;
        foreach (var entry in names)
        {
            if (entry.Pattern.Matches(name) && (best is not { } b || entry.KeyLength > b.KeyLength))
                best = entry;
        }
        return best switch
        {
            { Anywhere: true } => Detectors.KnownMiner,
            { InJobs: true } when inJob => Detectors.MinerInJob,
            _ => null,
        };
    }

    /// <summary>
    /// The program a dynamic loader was asked to run ("/lib64/ld-linux-x86-64.so.2
    /// [OPTIONS] PROGRAM ..."): its argument as given, or null when the process is
    /// no loader run that way.
    /// </summary>
    public static string? LoadedProgram(ProcessEntry process)
    {
        string file = Path.GetFileName(System.Text.Encoding.UTF8.GetString(process.Executable));
        if (!(file.StartsWith("ld-linux", StringComparison.Ordinal) || file.StartsWith("ld-musl", StringComparison.Ordinal) || file == "ld.so"
            || (file.StartsWith("ld-", StringComparison.Ordinal) && file.Contains(".so", StringComparison.Ordinal))))
            return null;
        string[] argv = System.Text.Encoding.UTF8.GetString(process.Args).Split('\0');
        for (int i = 1; i < argv.Length; i++)
        {
            if (argv[i] == "--")
                return i + 1 < argv.Length && argv[i + 1].Length > 0 ? argv[i + 1] : null;
            if (!argv[i].StartsWith("--", StringComparison.Ordinal))
                return argv[i].Length > 0 ? argv[i] : null;
            if (LoaderOptionsWithValue.Contains(argv[i]))
                i++;
        }
        return null;
    }

    /// <summary>
    /// An exec of a dynamic loader that runs a program named like a miner:
    /// the kernel saw only the loader's name, so the rule acts from user space.
    /// </summary>
    public AlertEvent? OnLoaderExec(ProcessEntry process, long timeNs)
    {
        if (LoadedProgram(process) is not { } program || RuleFor(Path.GetFileName(program), process.Membership.InJob) is not { } rule)
            return null;
        return new AlertEvent
        {
            Rule = rule.Name,
            Description = rule == Detectors.KnownMiner ? "known miner executable, run through the dynamic loader" : "miner name inside a training job, run through the dynamic loader",
            RequestedAction = policy.ActionFor(rule),
            Evidence =
            [
                new("executable", ExecutableHashes.PathOf(process)),
                new("name", Path.GetFileName(program)),
                new("program", program),
                new("in_job", process.Membership.InJob ? "true" : "false"),
            ],
            Process = process,
            TimeNs = timeNs,
        };
    }

    /// <summary>
    /// A process that ran before the sensor started, judged by name as the
    /// kernel judges an exec, since it will not exec again: its comm, or the
    /// file name of what it runs (a comm renamed since, with prctl, does not
    /// hide it). Nothing has killed it: the rule's action is asked of user space.
    /// <paramref name="late"/>: it started while the sensor ran, but its exec
    /// record was lost to a full ring (and so, perhaps, the kernel's kill with it
    /// where it ran a name the kernel only learnt later); it is judged the same way.
    /// </summary>
    public AlertEvent? OnExisting(ProcessEntry process, long timeNs, bool late = false)
    {
        bool inJob = process.Membership.InJob;
        string fileName = Comm.Of(Path.GetFileName(System.Text.Encoding.UTF8.GetString(process.Executable)));
        string? loaded = LoadedProgram(process) is { } program ? Path.GetFileName(program) : null;
        string? name = new[] { process.NameText, fileName, loaded }.FirstOrDefault(n => n is not null && RuleFor(n, inJob) is not null);
        if (name is null)
            return null;
        Detector rule = RuleFor(name, inJob)!;
        return new AlertEvent
        {
            Rule = rule.Name,
            Description = (rule == Detectors.KnownMiner ? "known miner executable" : "miner name inside a training job")
                + (late ? ", judged late: its exec record was lost to a full ring" : ", running before Guard started"),
            RequestedAction = policy.ActionFor(rule),
            Evidence =
            [
                new("executable", ExecutableHashes.PathOf(process)),
                new("name", name),
                new("in_job", inJob ? "true" : "false"),
                new(late ? "exec_record_lost" : "running_before_start", "true"),
            ],
            Process = process,
            TimeNs = timeNs,
        };
    }

    public AlertEvent? OnExec(ProcessEntry process, in ExecRecord record)
    {
        if ((record.Flags & ExecRecord.KnownMiner) == 0)
            return null;
        bool killed = (record.Flags & ExecRecord.Killed) != 0;
        // The kernel says which list its name was on: the name it matched may be the file's, not the comm.
        Detector rule = (record.Flags & ExecRecord.MinerAnywhere) != 0 ? Detectors.KnownMiner : Detectors.MinerInJob;
        string path = ExecutableHashes.PathOf(process);
        var evidence = new List<KeyValuePair<string, string>>
        {
            new("executable", path),
            new("name", process.NameText),
            new("in_job", ((record.Flags & ExecRecord.InJob) != 0).ToString(CultureInfo.InvariantCulture).ToLowerInvariant()),
        };
        return new AlertEvent
        {
            Rule = rule.Name,
            Description = rule == Detectors.KnownMiner ? "known miner executable" : "miner name inside a training job",
            Response = killed ? ["killed by the kernel at exec, before its first instruction"] : [],
            KilledInKernel = killed,
            // The kernel did the kill; a rule that also wants the job gets that from user space.
            RequestedAction = killed ? policy.ActionFor(rule) : RuleAction.Alert,
            Evidence = evidence,
            Process = process,
            TimeNs = (long)record.Header.TimeNs,
        };
    }

    /// <summary>Adds the executable's SHA-256 (or why it has none) after its path, once the hash is in.</summary>
    public static void WithSha256(AlertEvent verdict, string sha256OrWhy) =>
        verdict.Evidence = [verdict.Evidence[0], new("sha256", sha256OrWhy), .. verdict.Evidence.Skip(1)];
}
