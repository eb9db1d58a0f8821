using System.Globalization;
using System.Net;
using Guard.Sensor.Interop;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The sock_diag and socket-address parsers read what the kernel really
/// sends: Fixtures/sockdiag/captured.txt holds replies and addresses captured
/// on kernel 6.18 by capture.py beside it (a loopback TCP connection and a
/// unix one in a private network namespace), with the values each must give.
/// </summary>
public sealed class SockDiagParsingTests
{
    private static readonly Dictionary<string, string> Captured = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "sockdiag", "captured.txt"))
        .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);

    private static byte[] Bytes(string name) => Convert.FromHexString(Captured[name]);

    private static ulong Number(string name) => ulong.Parse(Captured[name], CultureInfo.InvariantCulture);

    /// <summary>The SOCK_DIAG_BY_FAMILY payloads of a reply, after checking its sequence number.</summary>
    private static List<byte[]> Payloads(string name, uint sequence)
    {
        var payloads = new List<byte[]>();
        var reader = new SockDiagReplies.MessageReader(Bytes(name));
        while (reader.Next(out SockDiagReplies.NetlinkMessage message))
        {
            Assert.Equal(sequence, message.Sequence);
            if (message.Type == SockDiagReplies.SockDiagByFamily)
                payloads.Add(message.Payload.ToArray());
        }
        return payloads;
    }

    [Fact]
    public void AnExactInetLookupNamesTheSocketItsInodeAndCookie()
    {
        byte[] payload = Assert.Single(Payloads("inet_exact_reply", 7));
        Assert.True(SockDiagReplies.TryParseInet(payload, out InetDiagSocket socket));
        Assert.Equal(2, socket.Family);
        Assert.Equal(1, socket.State); // established
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, (int)Number("tcp_client_port")), socket.Local);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 4000), socket.Remote);
        Assert.Equal(Number("tcp_client_inode"), socket.Inode);
        Assert.Equal(Number("tcp_client_cookie"), socket.Cookie);
        Assert.Equal(0u, socket.Uid);
    }

    [Fact]
    public void AListenerDumpsFirstDatagramNamesTheListener()
    {
        var reader = new SockDiagReplies.MessageReader(Bytes("inet_listeners_reply"));
        var types = new List<ushort>();
        InetDiagSocket? listener = null;
        while (reader.Next(out SockDiagReplies.NetlinkMessage message))
        {
            types.Add(message.Type);
            if (message.Type == SockDiagReplies.SockDiagByFamily && SockDiagReplies.TryParseInet(message.Payload, out InetDiagSocket s))
                listener = s;
        }
        // NLMSG_DONE comes in a datagram of its own: a dump is read until it, not until the first datagram ends.
        Assert.Equal([SockDiagReplies.SockDiagByFamily], types);
        Assert.NotNull(listener);
        Assert.Equal(10, listener.Value.State); // listen
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 4000), listener.Value.Local);
        Assert.Equal(Number("tcp_listener_inode"), listener.Value.Inode);
    }

    [Fact]
    public void AnExactUnixLookupNamesTheListenersPathAndThePeersInode()
    {
        byte[] payload = Assert.Single(Payloads("unix_exact_reply", 9));
        Assert.True(SockDiagReplies.TryParseUnix(payload, out UnixDiagSocket socket));
        Assert.Equal(Number("unix_accepted_inode"), socket.Inode);
        Assert.Equal(Number("unix_accepted_cookie"), socket.Cookie);
        Assert.Equal(1, socket.Type); // SOCK_STREAM
        Assert.Equal(1, socket.State); // established
        Assert.Equal(Captured["unix_path"], System.Text.Encoding.UTF8.GetString(socket.Name!)); // the terminating NUL the kernel counts is not part of it
        Assert.Equal(Number("unix_client_inode"), socket.PeerInode);
    }

    [Fact]
    public void AUnixLookupOfNoSuchSocketIsAnErrorOfEnoent()
    {
        var reader = new SockDiagReplies.MessageReader(Bytes("unix_missing_reply"));
        Assert.True(reader.Next(out SockDiagReplies.NetlinkMessage message));
        Assert.Equal(SockDiagReplies.NlmsgError, message.Type);
        Assert.Equal(2, message.Errno); // ENOENT
        Assert.False(SockDiagReplies.TryParseUnix(message.Payload, out _));
        Assert.False(reader.Next(out _));
    }

    [Fact]
    public void AUnixListenerDumpNamesEachListener()
    {
        var names = new List<string>();
        var reader = new SockDiagReplies.MessageReader(Bytes("unix_listeners_reply"));
        while (reader.Next(out SockDiagReplies.NetlinkMessage message))
        {
            if (message.Type == SockDiagReplies.SockDiagByFamily && SockDiagReplies.TryParseUnix(message.Payload, out UnixDiagSocket s))
            {
                Assert.Equal(10, s.State);
                names.Add(Guard.Sensor.Response.InboundConnections.NameText(s.Name!));
            }
        }
        Assert.Contains(Captured["unix_path"], names);
        Assert.Contains("@guard-relay", names);
    }

    [Fact]
    public void SocketAddressesReadAsTheKernelWroteThem()
    {
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 4000), SocketFacts.InetAddress(Bytes("tcp_accepted_sockname")));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, (int)Number("tcp_client_port")), SocketFacts.InetAddress(Bytes("tcp_accepted_peername")));
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 4001), SocketFacts.InetAddress(Bytes("tcp6_listener_sockname")));
        Assert.Null(SocketFacts.InetAddress(Bytes("unix_accepted_sockname")));

        // An accepted unix socket carries its listener's path; its peer, which connected unnamed, none.
        Assert.Equal(Captured["unix_path"], System.Text.Encoding.UTF8.GetString(SocketFacts.UnixAddress(Bytes("unix_accepted_sockname"))!));
        Assert.Null(SocketFacts.UnixAddress(Bytes("unix_accepted_peername")));
        Assert.Equal("\0guard-relay"u8.ToArray(), SocketFacts.UnixAddress(Bytes("unix_abstract_sockname")));
    }

    [Fact]
    public void DescriptorAndNamespaceLinksGiveTheirInodes()
    {
        Assert.Equal(Number("unix_accepted_inode"), SocketFacts.InodeOf(Captured["socket_link"]));
        Assert.Equal(Number("unix_accepted_inode"), FdLinks.ParseSocket(System.Text.Encoding.ASCII.GetBytes(Captured["socket_link"])));
        Assert.Equal(ulong.Parse(Captured["netns_link"][5..^1], CultureInfo.InvariantCulture), NetworkNamespaces.ParseInode(Captured["netns_link"]));
        Assert.Equal(0ul, SocketFacts.InodeOf("pipe:[12]"));
        Assert.Null(FdLinks.ParseSocket("socket:[]"u8));
        Assert.Null(FdLinks.ParseSocket("socket:[99999999999999999999999]"u8));
        Assert.Null(NetworkNamespaces.ParseInode("mnt:[4026531840]"));
    }

    [Fact]
    public void ShortAndInconsistentRepliesAreSkippedNotReadPast()
    {
        byte[] reply = Bytes("unix_exact_reply");
        // A length beyond the datagram: no message.
        byte[] longer = (byte[])reply.Clone();
        BitConverter.TryWriteBytes(longer.AsSpan(0, 4), reply.Length + 4);
        Assert.False(new SockDiagReplies.MessageReader(longer).Next(out _));
        // A message cut short: no socket.
        Assert.False(SockDiagReplies.TryParseUnix(reply.AsSpan(16, 10), out _));
        Assert.False(SockDiagReplies.TryParseInet(Bytes("inet_exact_reply").AsSpan(16, 71), out _));
        // An attribute whose length overruns the message: the socket without it.
        byte[] payload = Payloads("unix_exact_reply", 9)[0];
        BitConverter.TryWriteBytes(payload.AsSpan(SockDiagReplies.UnixMessageSize, 2), (ushort)500);
        Assert.True(SockDiagReplies.TryParseUnix(payload, out UnixDiagSocket cut));
        Assert.Null(cut.Name);
        Assert.Equal(0u, cut.PeerInode);
    }
}
