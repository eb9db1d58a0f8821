using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// Weak evidence: a DNS query for a pool domain, a connect from inside a job
/// to a pool port on a public address, a job's staged executable, a command
/// line with one weak miner signal, an executable that could not be hashed.
/// Ordinary software does each (Jupyter on 8888, servers on 8080,
/// --algo=ppo, a build that runs and deletes a test binary), so none acts:
/// each is kept on the process's record, and only a second, different signal
/// raises an alert.
/// </summary>
public sealed class WeakFindings
{
    private readonly Policy policy;
    private readonly PoolDomains pools;
    private readonly HashSet<int> poolPorts;

    public WeakFindings(Policy policy)
    {
        this.policy = policy;
        pools = new PoolDomains(policy.Indicators.PoolDomains);
        poolPorts = [.. policy.Indicators.PoolPorts];
    }

    public AlertEvent? OnDns(ProcessEntry? process, string name, long timeNs) =>
        process is not null && pools.Match(name) is { } pool && policy.ActionFor(Detectors.PoolDns) != RuleAction.Off
            ? Add(process, Detectors.PoolDns.Name, $"{name} (pool {pool})", timeNs)
            : null;

    /// <summary>A job's process running a memfd, a deleted file, or a file from /tmp-like directories.</summary>
    public AlertEvent? OnExec(ProcessEntry process, long timeNs) =>
        process.Staging is { } staging && process.Membership.InJob && policy.ActionFor(Detectors.Staging) != RuleAction.Off
            ? Add(process, Detectors.Staging.Name, $"{staging}: {process.ExecutableText}", timeNs)
            : null;

    /// <summary>
    /// A command line with one kind of weak miner signal (an option ordinary
    /// tools share, a pool host without a port, an address that only looks
    /// like a wallet): kept, and raising an alert only beside another kind.
    /// </summary>
    public static AlertEvent? OnWeakArguments(ProcessEntry process, string detail, long timeNs) =>
        Add(process, Detectors.MinerArguments.Name, detail, timeNs);

    /// <summary>
    /// An executable packed (UPX hides a miner's strings) or carrying one kind
    /// of a miner's markers only (a network tool may name Stratum methods).
    /// </summary>
    public AlertEvent? OnMarkers(ProcessEntry process, ContentVerdict content, string path, long timeNs)
    {
        if (!content.IsWeak || policy.ActionFor(Detectors.ExecutableMarkers) == RuleAction.Off)
            return null;
        string what = content.Kinds != MinerMarkerKinds.None
            ? $"{ContentFindings.Kinds(content.Kinds)} ({string.Join(", ", content.Markers)})" + (content.Packer is { } p ? $", packed with {p}" : "")
            : $"packed with {content.Packer}";
        return Add(process, Detectors.ExecutableMarkers.Name, $"{what}: {path}", timeNs);
    }

    /// <summary>
    /// An executable that could not be hashed as the file the kernel ran, while
    /// the deny list names hashes: gone with its path renamed or replaced, on
    /// FUSE, unreadable to root, too large, too slow, or the queue full. A way
    /// past the deny list, so kept as evidence.
    /// </summary>
    public AlertEvent? OnNotHashed(ProcessEntry process, string why, string path, long timeNs) =>
        policy.ActionFor(Detectors.UnverifiedExecutable) != RuleAction.Off
            ? Add(process, Detectors.UnverifiedExecutable.Name, $"{why}: {path}", timeNs)
            : null;

    public AlertEvent? OnConnect(ProcessEntry? process, ReadOnlySpan<byte> address, int family, int port, long timeNs)
    {
        if (process is null || !process.Membership.InJob || !poolPorts.Contains(port) || policy.ActionFor(Detectors.PoolPort) == RuleAction.Off)
            return null;
        var ip = new IPAddress(family == 2 ? address[..4] : address[..16]);
        // Local and private peers (Jupyter, Ray, a parameter server) are no evidence at all.
        return IsPublic(ip) ? Add(process, Detectors.PoolPort.Name, family == 2 ? $"{ip}:{port}" : $"[{ip}]:{port}", timeNs) : null;
    }

    /// <summary>
    /// A client inside a job asked a proxy for a pool port at a name (an
    /// address goes through <see cref="OnConnect"/>, as a direct connect would).
    /// </summary>
    public AlertEvent? OnProxyPort(ProcessEntry? process, string destination, int port, long timeNs) =>
        process is not null && process.Membership.InJob && poolPorts.Contains(port) && policy.ActionFor(Detectors.PoolPort) != RuleAction.Off
            ? Add(process, Detectors.PoolPort.Name, $"{destination} (through a proxy)", timeNs)
            : null;

    public static bool IsPublic(IPAddress ip)
    {
        if (IPAddress.IsLoopback(ip) || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
            return false;
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (ip.IsIPv4MappedToIPv6)
                return IsPublic(ip.MapToIPv4());
            byte first = ip.GetAddressBytes()[0];
            return !ip.IsIPv6LinkLocal && !ip.IsIPv6SiteLocal && (first & 0xFE) != 0xFC;
        }
        byte[] b = ip.GetAddressBytes();
        return !(b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168)
            || (b[0] == 169 && b[1] == 254) || (b[0] == 100 && (b[1] & 0xC0) == 64) || b[0] == 0);
    }

    private const int KeptPerProcess = 16;

    private static AlertEvent? Add(ProcessEntry process, string rule, string detail, long timeNs)
    {
        List<KeyValuePair<string, string>> seen = process.WeakEvidence ??= [];
        bool newKind = seen.All(e => e.Key != rule);
        // A process that repeats itself adds nothing after the first few.
        if (!newKind && seen.Count >= KeptPerProcess)
            return null;
        seen.Add(new(rule, detail));
        // An alert when a second kind of signal joins the first: once per kind, never a flood.
        if (!newKind || seen.Select(e => e.Key).Distinct().Count() < 2)
            return null;
        return new AlertEvent
        {
            Rule = rule,
            Description = "weak mining evidence, together with another signal",
            RequestedAction = RuleAction.Alert,
            Evidence = [.. seen.Select((e, i) => new KeyValuePair<string, string>($"{e.Key}.{i.ToString(CultureInfo.InvariantCulture)}", e.Value))],
            Process = process,
            TimeNs = timeNs,
        };
    }
}
