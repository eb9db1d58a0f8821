using System.Net;
using System.Text;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// The kernel found a Stratum method in a connection's first bytes (and,
/// when the policy stops it, dropped that segment and all after it): the
/// finding names the owner recorded at connect, and asks for it to be killed.
/// </summary>
public sealed class StratumFindings
{
    private readonly Policy policy;
    private readonly PoolDomains pools;

    public StratumFindings(Policy policy)
    {
        this.policy = policy;
        pools = new PoolDomains(policy.Indicators.PoolDomains);
    }

    /// <summary>A TLS ClientHello among a connection's first bytes that names a pool: strong evidence.</summary>
    public AlertEvent? OnFirstBytes(ProcessEntry? owner, ReadOnlySpan<byte> firstBytes, int port, long timeNs)
    {
        if (policy.ActionFor(Detectors.PoolSni) == RuleAction.Off || !TlsClientHello.TryReadServerName(firstBytes, out string host)
            || pools.Match(host) is not { } pool)
            return null;
        return new AlertEvent
        {
            Rule = Detectors.PoolSni.Name,
            Description = "a TLS connection that names a mining pool",
            RequestedAction = policy.ActionFor(Detectors.PoolSni),
            Evidence = [new("server_name", host), new("pool_domain", pool), new("port", port.ToString(System.Globalization.CultureInfo.InvariantCulture))],
            Process = owner,
            TimeNs = timeNs,
        };
    }

    public AlertEvent OnMatch(ProcessEntry? owner, ReadOnlySpan<byte> firstBytes, int family, ReadOnlySpan<byte> address, int port, bool dropped, long timeNs)
    {
        var destination = new IPAddress(family == 2 ? address[..4] : address[..16]);
        var response = new List<string>();
        if (dropped)
            response.Add("the segment completing the Stratum method, and every packet after it, dropped at egress");
        return new AlertEvent
        {
            Rule = Detectors.Stratum.Name,
            Description = "a Stratum mining message on a new outbound connection",
            RequestedAction = policy.ActionFor(Detectors.Stratum),
            Response = response,
            Evidence =
            [
                new("first_bytes", Encoding.UTF8.GetString(firstBytes)),
                new("destination", family == 2 ? $"{destination}:{port}" : $"[{destination}]:{port}"),
            ],
            Process = owner,
            TimeNs = timeNs,
        };
    }
}
