using System.Buffers.Text;
using System.Net;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>
/// Connect, payload and DNS lines: destination.*, source.*, network.*, dns.*
/// and guard.socket, guard.payload.
/// </summary>
internal sealed class EcsNetworkFields(EcsHeader header, EcsProcessFields processes)
{
    /// <summary>AF_INET, from the kernel's socket.h.</summary>
    private const int AddressFamilyIPv4 = 2;

    /// <summary>AF_INET6, from the kernel's socket.h.</summary>
    private const int AddressFamilyIPv6 = 10;

    /// <summary>IPPROTO_UDP, from the kernel's in.h.</summary>
    private const int ProtocolUdp = 17;

    /// <summary>A network line's members after the header's.</summary>
    public void Write(JsonLineWriter w, NetworkEvent n)
    {
        switch (n.Type)
        {
            case EventType.Connect:
                // event.outcome carries the result; UDP has no handshake to report (network.transport says which).
                header.Event(w, n.Sequence, "connection"u8, "network"u8, EventNames.Utf8(EventAction.Connect), n.Result switch
                {
                    ConnectResult.Established => "success"u8,
                    ConnectResult.Failed => "failure"u8,
                    _ => "unknown"u8,
                });
                break;
            case EventType.Payload:
                // Written once the first bytes are complete (final, or quiet for a while): after lines of later
                // events, so event.created says when; @timestamp is when the last of them left.
                header.Event(w, n.Sequence, "info"u8, "network"u8, EventNames.Utf8(EventAction.Payload), created: true);
                break;
            default:
                header.Event(w, n.Sequence, "protocol"u8, "network"u8, EventNames.Utf8(EventAction.DnsQuery));
                break;
        }
        processes.Process(w, n.Process);
        w.StartObject("destination"u8);
        Address(w, n.Family, n.DestinationAddress);
        w.Number("port"u8, n.DestinationPort);
        w.EndObject();
        if (n.Type == EventType.Connect && n.SourcePort != 0)
        {
            w.StartObject("source"u8);
            Address(w, n.Family, n.SourceAddress);
            w.Number("port"u8, n.SourcePort);
            w.EndObject();
        }
        w.StartObject("network"u8);
        w.AsciiString("transport"u8, n.Protocol == ProtocolUdp || n.Type == EventType.Dns ? "udp"u8 : "tcp"u8);
        w.AsciiString("type"u8, n.Family == AddressFamilyIPv6 ? "ipv6"u8 : "ipv4"u8);
        // ECS: a protocol event (event.type protocol) names its protocol here.
        if (n.Type == EventType.Dns)
            w.AsciiString("protocol"u8, "dns"u8);
        w.EndObject();
        if (n.Type == EventType.Dns)
            Dns(w, n);
        Guard(w, n);
    }

    /// <summary>dns.*: the query's id (a keyword in ECS: its decimal digits), name and type.</summary>
    private static void Dns(JsonLineWriter w, NetworkEvent n)
    {
        w.StartObject("dns"u8);
        w.AsciiString("type"u8, "query"u8);
        Span<byte> id = stackalloc byte[12];
        Utf8Formatter.TryFormat(n.DnsId, id, out int length);
        w.AsciiString("id"u8, id[..length]);
        w.StartObject("question"u8);
        w.Text("name"u8, n.DataSpan);
        w.AsciiString("type"u8, DnsNames.TypeName(n.DnsQueryType));
        w.EndObject();
        w.EndObject();
    }

    /// <summary>guard.*: job (no cgroup), socket cookie, the payload.</summary>
    private static void Guard(JsonLineWriter w, NetworkEvent n)
    {
        w.StartObject("guard"u8);
        if (n.Process is { } process)
            EcsLineageFields.Job(w, process, withCgroup: false);
        w.StartObject("socket"u8);
        w.Number("cookie"u8, n.Cookie);
        w.EndObject();
        if (n.Type == EventType.Payload)
        {
            w.StartObject("payload"u8);
            w.Number("length"u8, n.DataLength);
            w.Number("segments"u8, n.Segments);
            w.Text("data"u8, n.DataSpan);
            w.EndObject();
        }
        w.EndObject();
    }

    /// <summary>ip: dotted quad for IPv4 (the first 4 bytes), RFC 5952 text for IPv6 (all 16).</summary>
    private static void Address(JsonLineWriter w, int family, byte[] address)
    {
        // The longest IPv6 text, with an embedded IPv4 address, is 45 characters.
        Span<byte> text = stackalloc byte[48];
        int n;
        if (family == AddressFamilyIPv4)
        {
            n = 0;
            for (int i = 0; i < 4; i++)
            {
                if (i > 0)
                    text[n++] = (byte)'.';
                Utf8Formatter.TryFormat(address[i], text[n..], out int k);
                n += k;
            }
        }
        else
        {
            new IPAddress(address.AsSpan(0, 16)).TryFormat(text, out n);
        }
        w.AsciiString("ip"u8, text[..n]);
    }
}
