using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// The policy's SHA-256 deny list, checked at exec. Each executable file is
/// hashed once (by inode, size and modification time) and only while the
/// list is not empty, so the default policy costs nothing here.
/// </summary>
public sealed class HashFindings
{
    private readonly Policy policy;
    private readonly ExecutableHashes hashes;
    private readonly HashSet<string> denied;

    public HashFindings(Policy policy, ExecutableHashes hashes)
    {
        this.policy = policy;
        this.hashes = hashes;
        denied = [.. policy.Indicators.MinerHashes.Select(h => h.ToLowerInvariant())];
    }

    public AlertEvent? OnExec(ProcessEntry process, long timeNs)
    {
        if (denied.Count == 0 || policy.ActionFor(Detectors.MinerHash) == RuleAction.Off)
            return null;
        string path = ExecutableHashes.PathOf(process);
        if (hashes.Of(path) is not { } hash || !denied.Contains(hash))
            return null;
        return new AlertEvent
        {
            Rule = Detectors.MinerHash.Name,
            Description = "an executable on the policy's SHA-256 deny list",
            RequestedAction = policy.ActionFor(Detectors.MinerHash),
            Evidence = [new("executable", path), new("sha256", hash)],
            Process = process,
            TimeNs = timeNs,
        };
    }
}
