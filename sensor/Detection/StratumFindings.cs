using System.Globalization;
using System.Net;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// Stratum and pools named inside a connection's own bytes. The kernel reads
/// each TCP stream (bpf/stream.h) and records what it decided: a Stratum
/// verdict (and, when the policy stops it, it dropped that segment and all
/// after it), or the destination a client asked a proxy for. Each finding
/// names the owner recorded at connect and asks for the rule's action. The
/// first bytes are read here too, with <see cref="StratumScanner"/> (the
/// kernel's rules in C#), in case the kernel's own record of a match was lost.
/// </summary>
public sealed class StratumFindings
{
    private readonly Policy policy;
    private readonly PoolDomains pools;
    private readonly IReadOnlyDictionary<string, StratumVerdict> methods;

    // Reused for every connection's first bytes (one thread judges): no allocation per payload.
    private readonly StratumScanner scanner;

    public StratumFindings(Policy policy)
    {
        this.policy = policy;
        pools = new PoolDomains(policy.Indicators.PoolDomains);
        RuleAction stratum = policy.ActionFor(Detectors.Stratum);
        methods = StratumScanner.ForPolicy(stratum == RuleAction.Off ? [] : policy.Indicators.StratumMethods, KernelRules.Acts(stratum));
        scanner = new StratumScanner(methods);
    }

    /// <summary>The policy's methods as the kernel's map holds them, for a <see cref="StratumScanner"/>.</summary>
    public IReadOnlyDictionary<string, StratumVerdict> Methods => methods;

    /// <summary>
    /// A connection's first bytes, whole. A TLS ClientHello that names a pool
    /// is strong evidence; a Stratum method in them is acted on here only when
    /// the kernel's record of it never came (<paramref name="kernelDecided"/> false).
    /// </summary>
    public AlertEvent? OnFirstBytes(ProcessEntry? owner, ReadOnlySpan<byte> firstBytes, ReadOnlySpan<byte> address, int family, int port, bool kernelDecided, long timeNs)
    {
        if (!kernelDecided && methods.Count > 0)
        {
            scanner.Reset();
            if (scanner.Read(firstBytes) is StratumVerdict.Alert or StratumVerdict.Drop)
            {
                return Stratum(owner, "a Stratum mining message on a new outbound connection, read in user space (the kernel's record of it was lost)", [
                    new("method", scanner.Method),
                    new("first_bytes", Encoding.UTF8.GetString(firstBytes)),
                    new("destination", Destination(family, address, port)),
                    new("stream_offset", scanner.DecidedAt.ToString(CultureInfo.InvariantCulture)),
                ], [], timeNs);
            }
        }
        if (policy.ActionFor(Detectors.PoolSni) == RuleAction.Off || !TlsClientHello.TryReadServerName(firstBytes, out string host)
            || pools.Match(host) is not { } pool)
            return null;
        return new AlertEvent
        {
            Rule = Detectors.PoolSni.Name,
            Description = "a TLS connection that names a mining pool",
            RequestedAction = policy.ActionFor(Detectors.PoolSni),
            Evidence = [new("server_name", host), new("pool_domain", pool), new("port", port.ToString(CultureInfo.InvariantCulture))],
            Process = owner,
            TimeNs = timeNs,
        };
    }

    /// <summary>
    /// The kernel's verdict on a stream: a Stratum method (dropped, or
    /// reported), or a hold (its scan ran out inside a message or a
    /// handshake, or it sent urgent data before its head was read: nothing
    /// more of the connection leaves). <paramref name="firstBytes"/>:
    /// the head, when it is still at hand; empty otherwise.
    /// </summary>
    public AlertEvent OnVerdict(ProcessEntry? owner, in StreamRecord record, ReadOnlySpan<byte> firstBytes)
    {
        var evidence = new List<KeyValuePair<string, string>>();
        if (record.Verdict != StreamRecord.Hold)
            evidence.Add(new("method", Text(record.Method, GuardMethod.Capacity)));
        evidence.Add(new("destination", Destination(record.Family, record.DestinationAddress, record.DestinationPort)));
        evidence.Add(new("stream_offset", record.Offset.ToString(CultureInfo.InvariantCulture)));
        if (record.Proxy != StreamProxy.None)
            evidence.Add(new("proxy", ProxyText(record)));
        if (!firstBytes.IsEmpty)
            evidence.Add(new("first_bytes", Encoding.UTF8.GetString(firstBytes)));
        if (record.Verdict == StreamRecord.Hold)
        {
            return new AlertEvent
            {
                Rule = Detectors.Stratum.Name,
                Description = record.Offset >= StreamRecord.ScanLimit
                    ? $"a connection held undecided: its first JSON-RPC message or proxy handshake runs past the kernel's {StreamRecord.ScanLimit}-byte scan"
                    : "a connection held undecided: it sent urgent data (MSG_OOB), whose byte its peer may take out of the stream or leave in, or a segment that could not be read, before its head was read",
                RequestedAction = RuleAction.Alert,
                Response = ["the segment that held it, and every packet after it, dropped at egress"],
                Evidence = evidence,
                Process = owner,
                TimeNs = (long)record.Header.TimeNs,
            };
        }
        List<string> response = record.Verdict == GuardMethod.Drop
            ? ["the segment completing the Stratum method, and every packet after it, dropped at egress"]
            : [];
        return Stratum(owner, "a Stratum mining message on a new outbound connection", evidence, response, (long)record.Header.TimeNs);
    }

    /// <summary>
    /// A client asked a proxy (SOCKS4/4a/5, HTTP CONNECT, an absolute-form HTTP request) for a destination
    /// that is a pool domain: strong evidence, as a ClientHello naming one is
    /// (the pool-sni rule). Null when it names none.
    /// </summary>
    public AlertEvent? OnProxy(ProcessEntry? owner, in StreamRecord record)
    {
        if (policy.ActionFor(Detectors.PoolSni) == RuleAction.Off || ProxyHostName(record) is not { } host || pools.Match(host) is not { } pool)
            return null;
        return new AlertEvent
        {
            Rule = Detectors.PoolSni.Name,
            Description = "a connection through a proxy that asks it for a mining pool",
            RequestedAction = policy.ActionFor(Detectors.PoolSni),
            Evidence =
            [
                new("proxy", ProxyText(record)),
                new("pool_domain", pool),
                new("proxy_address", Destination(record.Family, record.DestinationAddress, record.DestinationPort)),
            ],
            Process = owner,
            TimeNs = (long)record.Header.TimeNs,
        };
    }

    /// <summary>The name a client asked a proxy for (a SOCKS4a or SOCKS5 name, the host of an HTTP CONNECT or absolute-form authority); null for an address.</summary>
    public static string? ProxyHostName(in StreamRecord record)
    {
        string host = Text(record.ProxyHost, record.ProxyHostLength);
        return record.ProxyAddress switch
        {
            ProxyAddress.Name => host,
            ProxyAddress.Authority => AuthorityHost(host) is { } h && !IPAddress.TryParse(h, out _) ? h : null,
            _ => null,
        };
    }

    /// <summary>The address a client asked a proxy for, when it gave one (SOCKS4, SOCKS5, an HTTP CONNECT to an address literal).</summary>
    public static IPAddress? ProxyHostAddress(in StreamRecord record)
    {
        ReadOnlySpan<byte> host = record.ProxyHost;
        return record.ProxyAddress switch
        {
            ProxyAddress.IPv4 when record.ProxyHostLength >= 4 => new IPAddress(host[..4]),
            ProxyAddress.IPv6 when record.ProxyHostLength >= 16 => new IPAddress(host[..16]),
            ProxyAddress.Authority when AuthorityHost(Text(record.ProxyHost, record.ProxyHostLength)) is { } h && IPAddress.TryParse(h, out IPAddress? ip) => ip,
            _ => null,
        };
    }

    /// <summary>The port a client asked a proxy for (an HTTP request's from its authority); 0 when none is known.</summary>
    public static int ProxyPort(in StreamRecord record)
    {
        if (record.ProxyAddress != ProxyAddress.Authority)
            return record.ProxyPort;
        string authority = Text(record.ProxyHost, record.ProxyHostLength);
        int colon = authority.LastIndexOf(':');
        return colon >= 0 && colon > authority.LastIndexOf(']') && int.TryParse(authority.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port <= 65535
            ? port
            : 0;
    }

    /// <summary>"socks5 pool.example:3333", as the client asked.</summary>
    public static string ProxyText(in StreamRecord record)
    {
        string kind = record.Proxy switch
        {
            StreamProxy.Socks4 => "socks4",
            StreamProxy.Socks4a => "socks4a",
            StreamProxy.Socks5 => "socks5",
            StreamProxy.HttpConnect => "http-connect",
            StreamProxy.HttpForward => "http-forward",
            _ => "none",
        };
        string port = record.ProxyPort.ToString(CultureInfo.InvariantCulture);
        string destination = record.ProxyAddress switch
        {
            ProxyAddress.Authority => Text(record.ProxyHost, record.ProxyHostLength),
            ProxyAddress.Name => $"{Text(record.ProxyHost, record.ProxyHostLength)}:{port}",
            ProxyAddress.IPv4 or ProxyAddress.IPv6 when ProxyHostAddress(record) is { } ip => ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]:{port}" : $"{ip}:{port}",
            _ => "?",
        };
        return $"{kind} {destination}";
    }

    private AlertEvent Stratum(ProcessEntry? owner, string description, List<KeyValuePair<string, string>> evidence, List<string> response, long timeNs) => new()
    {
        Rule = Detectors.Stratum.Name,
        Description = description,
        RequestedAction = policy.ActionFor(Detectors.Stratum),
        Response = response,
        Evidence = evidence,
        Process = owner,
        TimeNs = timeNs,
    };

    private static string Destination(int family, ReadOnlySpan<byte> address, int port)
    {
        var ip = new IPAddress(family == 2 ? address[..4] : address[..16]);
        return family == 2 ? $"{ip}:{port}" : $"[{ip}]:{port}";
    }

    /// <summary>Bytes a hostile client chose, as text: up to the first NUL and <paramref name="length"/>, invalid UTF-8 replaced.</summary>
    private static string Text(ReadOnlySpan<byte> bytes, int length)
    {
        bytes = bytes[..Math.Min(length, bytes.Length)];
        int nul = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? bytes[..nul] : bytes);
    }

    /// <summary>The host of "host:port" or "[v6]:port"; null when empty.</summary>
    private static string? AuthorityHost(string authority)
    {
        string host = authority;
        if (host.StartsWith('['))
        {
            int close = host.IndexOf(']', StringComparison.Ordinal);
            host = close > 0 ? host[1..close] : host[1..];
        }
        else if (host.LastIndexOf(':') is int colon and >= 0)
        {
            host = host[..colon];
        }
        return host.Length > 0 ? host : null;
    }
}
