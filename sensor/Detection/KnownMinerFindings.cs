using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// Turns the kernel's exec verdict (a known miner name, killed or not) into
/// an alert with its evidence: the executable's path (its SHA-256 joins once
/// hashed, <see cref="WithSha256"/>), the command line, the working directory,
/// the lineage and the job root.
/// </summary>
public sealed class KnownMinerFindings
{
    private readonly HashSet<string> anywhere;
    private readonly HashSet<string> inJobs;
    private readonly Policy policy;

    public KnownMinerFindings(Policy policy)
    {
        this.policy = policy;
        anywhere = [.. policy.Indicators.MinerNames.Select(Comm.Of)];
        inJobs = [.. policy.Indicators.MinerNamesInJobs.Select(Comm.Of)];
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
        string? name = new[] { process.NameText, fileName }.FirstOrDefault(n => anywhere.Contains(n) || (inJob && inJobs.Contains(n)));
        if (name is null)
            return null;
        Detector rule = anywhere.Contains(name) ? Detectors.KnownMiner : Detectors.MinerInJob;
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
