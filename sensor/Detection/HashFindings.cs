using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// The policy's SHA-256 deny list, judged on the hash of the file the kernel
/// executed (<see cref="ExecutableHashes"/>, off the event thread). Files are
/// hashed only while the list is not empty, so the default policy costs
/// nothing here.
/// </summary>
public sealed class HashFindings
{
    private readonly Policy policy;
    private readonly HashSet<string> denied;

    public HashFindings(Policy policy)
    {
        this.policy = policy;
        denied = [.. policy.Indicators.MinerHashes.Select(h => h.ToLowerInvariant())];
    }

    /// <summary>Whether every exec's file must be hashed: the list names hashes and the rule is not off.</summary>
    public bool Active => denied.Count > 0 && policy.ActionFor(Detectors.MinerHash) != RuleAction.Off;

    /// <summary>A finding when <paramref name="sha256"/>, the hash of the file <paramref name="process"/> was exec'd from, is denied.</summary>
    public AlertEvent? OnHash(ProcessEntry process, string path, string sha256, long timeNs)
    {
        if (!Active || !denied.Contains(sha256))
            return null;
        return new AlertEvent
        {
            Rule = Detectors.MinerHash.Name,
            Description = "an executable on the policy's SHA-256 deny list",
            RequestedAction = policy.ActionFor(Detectors.MinerHash),
            Evidence = [new("executable", path), new("sha256", sha256)],
            Process = process,
            TimeNs = timeNs,
        };
    }
}
