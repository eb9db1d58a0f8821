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

    /// <summary>IPPROTO_TCP, from the kernel's in.h.</summary>
    private const int ProtocolTcp = 6;

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

    /// <summary>
    /// A [[confine]] denial's members after the header's: event.type denied and
    /// event.outcome failure, or in audit mode event.type allowed, outcome success
    /// and guard.confine.would_deny true (nothing was denied; the section would
    /// have); event.action confine-deny or confine-audit. destination.*, network.*,
    /// the process and its lineage where the kernel named one (not at egress, where
    /// a packet has no process), guard.job, and guard.confine: the section, its
    /// source, mode, what was attempted, how often since the last report, and when first.
    /// </summary>
    public void Write(JsonLineWriter w, ConfineEvent c)
    {
        header.Event(w, c.Sequence, c.WouldDeny ? "allowed"u8 : "denied"u8, "network"u8, c.WouldDeny ? "confine-audit"u8 : c.ApprovalId is null ? "confine-deny"u8 : "confine-ask"u8,
            c.WouldDeny ? "success"u8 : "failure"u8, dataset: "guard.confine"u8);
        processes.Process(w, c.Process);
        w.StartObject("destination"u8);
        Address(w, c.Family, c.DestinationAddress);
        w.Number("port"u8, c.DestinationPort);
        w.EndObject();
        w.StartObject("network"u8);
        w.AsciiString("transport"u8, c.Protocol == ProtocolUdp ? "udp"u8 : c.Protocol == ProtocolTcp ? "tcp"u8 : "other"u8);
        w.AsciiString("type"u8, c.Family == AddressFamilyIPv6 ? "ipv6"u8 : "ipv4"u8);
        w.EndObject();
        w.StartObject("guard"u8);
        if (c.Process is { } p && p.Membership.Id is not null)
            EcsLineageFields.Job(w, p, withCgroup: false);
        else if (c.JobId is { } job)
        {
            w.StartObject("job"u8);
            w.Text("id"u8, job);
            w.Text("kind"u8, job[..Math.Max(job.IndexOf(':', StringComparison.Ordinal), 0)]);
            w.EndObject();
        }
        if (c.Process is { } process)
            EcsLineageFields.Ancestry(w, process);
        w.StartObject("confine"u8);
        w.Text("section"u8, c.Section);
        if (c.SectionSource.Length > 0)
            w.Text("source"u8, c.SectionSource);
        w.Text("mode"u8, c.Mode);
        w.Text("attempt"u8, c.Attempt);
        w.Number("count"u8, c.Count);
        header.Timestamp(w, "first"u8, c.FirstNs);
        w.Number("job_set"u8, c.JobSet);
        if (c.WouldDeny)
            w.Bool("would_deny"u8, true);
        w.EndObject();
        if (c.ApprovalId is { } id)
            EcsApprovalFields.Request(w, id, c.ApprovalExpiresUnixMs);
        w.EndObject();
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
