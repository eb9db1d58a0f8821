using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace Guard.Sensor.Interop;

/// <summary>What a socket descriptor says of itself, read with getsockopt, getsockname and getpeername.</summary>
/// <param name="Family">AF_UNIX, AF_INET, AF_INET6, ... (SO_DOMAIN).</param>
/// <param name="Type">SOCK_STREAM, SOCK_DGRAM, ... (SO_TYPE).</param>
/// <param name="Protocol">IPPROTO_TCP for TCP (SO_PROTOCOL).</param>
/// <param name="Listening">Whether it is a listener (SO_ACCEPTCONN).</param>
/// <param name="TcpState">A TCP socket's state (1 established, 10 listen); -1 for any other.</param>
/// <param name="Inode">Its inode in sockfs, as /proc/PID/fd names it (socket:[N]); 0 when unreadable.</param>
/// <param name="Cookie">Its socket cookie (SO_COOKIE); 0 when unreadable.</param>
/// <param name="Local">Its own address: an <see cref="IPEndPoint"/> for TCP and UDP, else null.</param>
/// <param name="Peer">The address it is connected to, for TCP and UDP; null when none.</param>
/// <param name="LocalName">A unix socket's own name (<see cref="SockDiagReplies.UnixName"/>); null when unnamed.</param>
/// <param name="PeerName">The name of the unix socket at its other end; null when unnamed or unconnected.</param>
public sealed record SocketFacts(
    ushort Family, int Type, int Protocol, bool Listening, int TcpState, ulong Inode, ulong Cookie,
    IPEndPoint? Local, IPEndPoint? Peer, byte[]? LocalName, byte[]? PeerName)
{
    /// <summary>A connected TCP stream (established).</summary>
    public bool IsEstablishedTcp => Family is Sockets.AfInet or Sockets.AfInet6 && Protocol == Sockets.IpprotoTcp && TcpState == 1;

    /// <summary>A unix stream or seqpacket socket (a connection, not datagrams).</summary>
    public bool IsUnixStream => Family == Sockets.AfUnix && Type is Sockets.SockStream or 5;

    /// <summary>
    /// Reads <paramref name="fd"/> (one of ours: a duplicate is fine); null when it is no
    /// socket. <paramref name="inode"/>, when known, saves reading the descriptor's link.
    /// </summary>
    public static unsafe SocketFacts? Read(FileDescriptor fd, ulong inode = 0)
    {
        int? family = Sockets.IntOption(fd.Fd, Sockets.SolSocket, Sockets.SoDomain);
        int? type = Sockets.IntOption(fd.Fd, Sockets.SolSocket, Sockets.SoType);
        if (family is null || type is null)
            return null;
        int protocol = Sockets.IntOption(fd.Fd, Sockets.SolSocket, Sockets.SoProtocol) ?? 0;
        bool listening = Sockets.IntOption(fd.Fd, Sockets.SolSocket, Sockets.SoAcceptconn) == 1;
        bool inet = family is Sockets.AfInet or Sockets.AfInet6;
        int state = inet && protocol == Sockets.IpprotoTcp ? Sockets.TcpState(fd.Fd) : -1;
        byte* address = stackalloc byte[128];
        uint length = 128;
        ReadOnlySpan<byte> local = Sockets.GetSockName(fd.Fd, address, &length) == 0 ? new ReadOnlySpan<byte>(address, (int)Math.Min(length, 128)).ToArray() : [];
        length = 128;
        ReadOnlySpan<byte> peer = Sockets.GetPeerName(fd.Fd, address, &length) == 0 ? new ReadOnlySpan<byte>(address, (int)Math.Min(length, 128)).ToArray() : [];
        return new SocketFacts(
            (ushort)family.Value, type.Value, protocol, listening, state, inode != 0 ? inode : InodeOf(fd.CurrentPath()), Sockets.Cookie(fd.Fd),
            inet ? InetAddress(local) : null, inet ? InetAddress(peer) : null,
            family == Sockets.AfUnix ? UnixAddress(local) : null, family == Sockets.AfUnix ? UnixAddress(peer) : null);
    }

    /// <summary>The inode in a socket link's text ("socket:[123]"); 0 for any other text.</summary>
    public static ulong InodeOf(string? link)
    {
        if (link is null || !link.StartsWith("socket:[", StringComparison.Ordinal) || !link.EndsWith(']'))
            return 0;
        return ulong.TryParse(link.AsSpan(8, link.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode) ? inode : 0;
    }

    /// <summary>A sockaddr_in or sockaddr_in6 as an endpoint; null for anything else or a short one.</summary>
    public static IPEndPoint? InetAddress(ReadOnlySpan<byte> sockaddr)
    {
        if (sockaddr.Length < 8)
            return null;
        ushort family = BinaryPrimitives.ReadUInt16LittleEndian(sockaddr);
        int port = BinaryPrimitives.ReadUInt16BigEndian(sockaddr[2..]);
        if (family == Sockets.AfInet)
            return new IPEndPoint(new IPAddress(sockaddr.Slice(4, 4)), port);
        if (family == Sockets.AfInet6 && sockaddr.Length >= 24)
            return new IPEndPoint(new IPAddress(sockaddr.Slice(8, 16)), port);
        return null;
    }

    /// <summary>A sockaddr_un's name (<see cref="SockDiagReplies.UnixName"/>); null for an unnamed one or another family.</summary>
    public static byte[]? UnixAddress(ReadOnlySpan<byte> sockaddr) =>
        sockaddr.Length > 2 && BinaryPrimitives.ReadUInt16LittleEndian(sockaddr) == Sockets.AfUnix ? SockDiagReplies.UnixName(sockaddr[2..]) : null;
}
