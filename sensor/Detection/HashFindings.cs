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
    private const long MaxHashedBytes = 256L << 20;
    private readonly Policy policy;
    private readonly HashSet<string> denied;
    private readonly Dictionary<(ulong Inode, long Size, DateTime Modified), string> hashes = [];

    public HashFindings(Policy policy)
    {
        this.policy = policy;
        denied = [.. policy.Indicators.MinerHashes.Select(h => h.ToLowerInvariant())];
    }

    public AlertEvent? OnExec(ProcessEntry process, long timeNs)
    {
        if (denied.Count == 0 || policy.ActionFor("miner-hash") == RuleAction.Off)
            return null;
        string path = process.ExecutableText;
        if (!path.StartsWith('/') && process.WorkingDirectory is { } cwd)
            path = Path.Join(cwd, path);
        if (HashOf(path) is not { } hash || !denied.Contains(hash))
            return null;
        return new AlertEvent
        {
            Rule = "miner-hash",
            Description = "an executable on the policy's SHA-256 deny list",
            RequestedAction = policy.ActionFor("miner-hash"),
            Evidence = [new("executable", path), new("sha256", hash)],
            Process = process,
            TimeNs = timeNs,
        };
    }

    private string? HashOf(string path)
    {
        try
        {
            var file = new FileInfo(path);
            if (!file.Exists || file.Length > MaxHashedBytes || Libc.InodeOf(path) is not ulong inode)
                return null;
            var key = (inode, file.Length, file.LastWriteTimeUtc);
            if (!hashes.TryGetValue(key, out string? hash))
            {
                using FileStream stream = file.OpenRead();
                hash = Sha256.HexOf(stream);
                hashes[key] = hash;
            }
            return hash;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
