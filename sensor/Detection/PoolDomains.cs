namespace Guard.Sensor.Detection;

/// <summary>Pool domains from the policy, matched as suffixes: the name itself, or anything ending in "." + it.</summary>
public sealed class PoolDomains
{
    private readonly string[] suffixes;

    public PoolDomains(IEnumerable<string> domains) => suffixes = [.. domains.Select(d => d.ToLowerInvariant())];

    public string? Match(string host)
    {
        host = host.TrimEnd('.').ToLowerInvariant();
        foreach (string s in suffixes)
        {
            if (host == s || host.EndsWith("." + s, StringComparison.Ordinal))
                return s;
        }
        return null;
    }
}
