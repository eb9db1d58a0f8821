using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// Turns the kernel's exec verdict (a known miner name, killed or not) into
/// an alert with its evidence: the executable's SHA-256 and path, the command
/// line, the working directory, the lineage and the job root.
/// </summary>
public sealed class KnownMinerFindings
{
    private readonly HashSet<string> anywhere;
    private readonly Policy policy;
    private readonly ExecutableHashes hashes;

    public KnownMinerFindings(Policy policy, ExecutableHashes hashes)
    {
        this.policy = policy;
        this.hashes = hashes;
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
            new("sha256", hashes.Of(path) ?? "not hashed: unreadable, or over 256 MB"),
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
}
