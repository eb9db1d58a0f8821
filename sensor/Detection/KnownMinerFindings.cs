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
    private readonly Policy policy;

    public KnownMinerFindings(Policy policy)
    {
        this.policy = policy;
        anywhere = [.. policy.Indicators.MinerNames.Select(Comm.Of)];
    }

    public AlertEvent? OnExec(ProcessEntry process, in ExecRecord record)
    {
        if ((record.Flags & ExecRecord.KnownMiner) == 0)
            return null;
        bool killed = (record.Flags & ExecRecord.Killed) != 0;
        Detector rule = anywhere.Contains(process.NameText) ? Detectors.KnownMiner : Detectors.MinerInJob;
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
