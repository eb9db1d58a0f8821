using System.Globalization;
using System.Net;

using Guard.Sensor.Bpf;

namespace Guard.Sensor.Detection;

/// <summary>The policy's allowed destinations: no network finding is made about a connection to one.</summary>
public sealed class AllowedDestinations
{
    private const ushort AfInet = 2;
    private readonly DestinationRule[] rules;

    public AllowedDestinations(Policy policy) => rules = [.. policy.Allow.Destinations.Select(Parse)];

    /// <summary>Parses ADDRESS[/PREFIX][:PORT] (IPv6 in brackets when a port follows), as the policy checked it. IPv4 becomes v4-mapped IPv6.</summary>
    public static DestinationRule Parse(string text)
    {
        string address = text;
        ushort port = 0;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']', StringComparison.Ordinal);
            address = text[1..close];
            if (close + 1 < text.Length)
                port = ushort.Parse(text[(close + 2)..], CultureInfo.InvariantCulture);
        }
        else if (text.Count(c => c == ':') == 1)
        {
            int colon = text.IndexOf(':', StringComparison.Ordinal);
            port = ushort.Parse(text[(colon + 1)..], CultureInfo.InvariantCulture);
            address = text[..colon];
        }
        string[] cidr = address.Split('/');
        IPAddress ip = IPAddress.Parse(cidr[0]);
        bool v4 = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
        int prefix = cidr.Length == 2 ? int.Parse(cidr[1], CultureInfo.InvariantCulture) : v4 ? 32 : 128;
        return new DestinationRule(ip.MapToIPv6().GetAddressBytes(), v4 ? 96 + prefix : prefix, port);
    }

    public IReadOnlyList<DestinationRule> Rules => rules;

    /// <summary>A destination as records carry it: IPv4 in the first four bytes when the family says so.</summary>
    public bool Allows(ushort family, ReadOnlySpan<byte> address, ushort port)
    {
        if (rules.Length == 0)
            return false;
        Span<byte> mapped = stackalloc byte[16];
        if (family == AfInet)
        {
            mapped.Clear();
            mapped[10] = mapped[11] = 0xFF;
            address[..4].CopyTo(mapped[12..]);
        }
        else
        {
            address[..16].CopyTo(mapped);
        }
        foreach (DestinationRule rule in rules)
        {
            if (rule.Matches(mapped, port))
                return true;
        }
        return false;
    }
}
