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

    public StratumFindings(Policy policy) => this.policy = policy;

    public AlertEvent OnMatch(ProcessEntry? owner, ReadOnlySpan<byte> firstBytes, int family, ReadOnlySpan<byte> address, int port, bool dropped, long timeNs)
    {
        var destination = new IPAddress(family == 2 ? address[..4] : address[..16]);
        var response = new List<string>();
        if (dropped)
            response.Add("the segment completing the Stratum method, and every packet after it, dropped at egress");
        return new AlertEvent
        {
            Rule = "stratum",
            Description = "a Stratum mining message on a new outbound connection",
            RequestedAction = policy.ActionFor("stratum"),
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
