using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>A TCP socket as inet_diag describes it (struct inet_diag_msg, include/uapi/linux/inet_diag.h).</summary>
/// <param name="Family">AF_INET or AF_INET6.</param>
/// <param name="State">Its TCP state (include/net/tcp_states.h: 1 established, 10 listen).</param>
/// <param name="Local">Its own address and port (an IPv4-mapped IPv6 address stays as the kernel gives it).</param>
/// <param name="Remote">The address and port it is connected to; any and 0 for a listener.</param>
/// <param name="Inode">Its inode in sockfs (what /proc/PID/fd shows as socket:[N]); 0 once no file holds it.</param>
/// <param name="Cookie">Its socket cookie, the id Guard's kernel records name it by.</param>
/// <param name="Uid">The uid that made it.</param>
/// <param name="CgroupId">The id of the cgroup v2 it was made in (INET_DIAG_CGROUP_ID, Linux 5.9; a listener's child has its listener's); 0 when the reply has none.</param>
public readonly record struct InetDiagSocket(byte Family, byte State, IPEndPoint Local, IPEndPoint Remote, uint Inode, ulong Cookie, uint Uid, ulong CgroupId = 0);

/// <summary>A unix socket as unix_diag describes it (struct unix_diag_msg, include/uapi/linux/unix_diag.h).</summary>
/// <param name="Inode">Its inode in sockfs.</param>
/// <param name="Cookie">Its socket cookie.</param>
/// <param name="Type">SOCK_STREAM (1), SOCK_DGRAM (2), SOCK_SEQPACKET (5).</param>
/// <param name="State">TCP_ESTABLISHED (1) when connected, TCP_LISTEN (10) for a listener.</param>
/// <param name="Name">The address it is bound to (a path, or an abstract name starting with a NUL), as sun_path bytes up to its end; null when unnamed.</param>
/// <param name="PeerInode">The inode of the socket at the other end (UNIX_DIAG_PEER); 0 when none, or when that end has no file left.</param>
public readonly record struct UnixDiagSocket(uint Inode, ulong Cookie, byte Type, byte State, byte[]? Name, uint PeerInode);

/// <summary>
/// Parses sock_diag netlink replies: the netlink framing (struct nlmsghdr),
/// errors (NLMSG_ERROR), and the inet_diag and unix_diag messages with the
/// attributes Guard asks for. Every length is checked against the buffer:
/// a short or inconsistent message is skipped, never read past.
/// </summary>
public static class SockDiagReplies
{
    /// <summary>NLMSG_ERROR (include/uapi/linux/netlink.h).</summary>
    public const ushort NlmsgError = 2;

    /// <summary>NLMSG_DONE: the end of a dump.</summary>
    public const ushort NlmsgDone = 3;

    /// <summary>SOCK_DIAG_BY_FAMILY (include/uapi/linux/sock_diag.h): the type of every request and reply.</summary>
    public const ushort SockDiagByFamily = 20;

    /// <summary>sizeof(struct nlmsghdr).</summary>
    public const int HeaderSize = 16;

    /// <summary>sizeof(struct inet_diag_msg).</summary>
    public const int InetMessageSize = 72;

    /// <summary>sizeof(struct unix_diag_msg).</summary>
    public const int UnixMessageSize = 16;

    /// <summary>INET_DIAG_CGROUP_ID (include/uapi/linux/inet_diag.h): a u64 every full socket's reply carries.</summary>
    private const ushort InetDiagCgroupId = 21;

    private const ushort UnixDiagName = 0;
    private const ushort UnixDiagPeer = 2;

    /// <summary>One netlink message of a datagram: its type, its sequence number and its payload.</summary>
    public readonly ref struct NetlinkMessage(ushort type, uint sequence, ReadOnlySpan<byte> payload)
    {
        public ushort Type { get; } = type;

        public uint Sequence { get; } = sequence;

        public ReadOnlySpan<byte> Payload { get; } = payload;

        /// <summary>An NLMSG_ERROR's errno (positive; 0 is an acknowledgement); -1 when this is no error message.</summary>
        public int Errno => Type == NlmsgError && Payload.Length >= 4 ? -BinaryPrimitives.ReadInt32LittleEndian(Payload) : -1;
    }

    /// <summary>Walks the netlink messages of one received datagram.</summary>
    public ref struct MessageReader(ReadOnlySpan<byte> datagram)
    {
        private ReadOnlySpan<byte> rest = datagram;

        /// <summary>The next whole message; false at the end, or at a length that does not fit what is left.</summary>
        public bool Next(out NetlinkMessage message)
        {
            message = default;
            if (rest.Length < HeaderSize)
                return false;
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
            if (length < HeaderSize || length > rest.Length)
                return false;
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(rest[4..]);
            uint sequence = BinaryPrimitives.ReadUInt32LittleEndian(rest[8..]);
            message = new NetlinkMessage(type, sequence, rest[HeaderSize..(int)length]);
            int aligned = (int)Math.Min((length + 3) & ~3u, (uint)rest.Length);
            rest = rest[aligned..];
            return true;
        }
    }

    /// <summary>Reads a struct inet_diag_msg (the payload of a SOCK_DIAG_BY_FAMILY reply for AF_INET or AF_INET6).</summary>
    public static bool TryParseInet(ReadOnlySpan<byte> payload, out InetDiagSocket socket)
    {
        socket = default;
        if (payload.Length < InetMessageSize)
            return false;
        byte family = payload[0];
        if (family is not ((byte)Sockets.AfInet or (byte)Sockets.AfInet6))
            return false;
        // struct inet_diag_sockid at 4: sport, dport (big-endian), src[16], dst[16], if, cookie[2].
        ushort sport = BinaryPrimitives.ReadUInt16BigEndian(payload[4..]);
        ushort dport = BinaryPrimitives.ReadUInt16BigEndian(payload[6..]);
        IPAddress src = Address(family, payload.Slice(8, 16));
        IPAddress dst = Address(family, payload.Slice(24, 16));
        ulong cookie = BinaryPrimitives.ReadUInt32LittleEndian(payload[44..]) | ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(payload[48..]) << 32);
        // Then expires, rqueue, wqueue, uid, inode.
        uint uid = BinaryPrimitives.ReadUInt32LittleEndian(payload[64..]);
        uint inode = BinaryPrimitives.ReadUInt32LittleEndian(payload[68..]);
        ulong cgroupId = 0;
        ReadOnlySpan<byte> attributes = payload[InetMessageSize..];
        // struct nlattr: length (header included), type; payloads padded to 4.
        while (attributes.Length >= 4)
        {
            ushort length = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
            ushort kind = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]) & 0x3FFF);
            if (length < 4 || length > attributes.Length)
                break;
            if (kind == InetDiagCgroupId && length >= 12)
                cgroupId = BinaryPrimitives.ReadUInt64LittleEndian(attributes[4..]);
            attributes = attributes[Math.Min((length + 3) & ~3, attributes.Length)..];
        }
        socket = new InetDiagSocket(family, payload[1], new IPEndPoint(src, sport), new IPEndPoint(dst, dport), inode, cookie, uid, cgroupId);
        return true;
    }

    /// <summary>Reads a struct unix_diag_msg and its UNIX_DIAG_NAME and UNIX_DIAG_PEER attributes.</summary>
    public static bool TryParseUnix(ReadOnlySpan<byte> payload, out UnixDiagSocket socket)
    {
        socket = default;
        if (payload.Length < UnixMessageSize || payload[0] != Sockets.AfUnix)
            return false;
        byte type = payload[1];
        byte state = payload[2];
        uint inode = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        ulong cookie = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]) | ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(payload[12..]) << 32);
        byte[]? name = null;
        uint peer = 0;
        ReadOnlySpan<byte> attributes = payload[UnixMessageSize..];
        // struct nlattr: length (header included), type; payloads padded to 4.
        while (attributes.Length >= 4)
        {
            ushort length = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
            ushort kind = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]) & 0x3FFF);
            if (length < 4 || length > attributes.Length)
                break;
            ReadOnlySpan<byte> value = attributes[4..length];
            if (kind == UnixDiagName && value.Length > 0)
                name = UnixName(value);
            else if (kind == UnixDiagPeer && value.Length >= 4)
                peer = BinaryPrimitives.ReadUInt32LittleEndian(value);
            attributes = attributes[Math.Min((length + 3) & ~3, attributes.Length)..];
        }
        socket = new UnixDiagSocket(inode, cookie, type, state, name, peer);
        return true;
    }

    /// <summary>
    /// A unix address as sun_path bytes: a path ends at its first NUL (the
    /// kernel counts the terminator in), an abstract name (a leading NUL)
    /// keeps every byte; null for an empty one (unnamed).
    /// </summary>
    public static byte[]? UnixName(ReadOnlySpan<byte> sunPath)
    {
        if (sunPath.IsEmpty)
            return null;
        if (sunPath[0] == 0)
            return sunPath.ToArray();
        int end = sunPath.IndexOf((byte)0);
        return (end < 0 ? sunPath : sunPath[..end]).ToArray();
    }

    private static IPAddress Address(byte family, ReadOnlySpan<byte> bytes) => new(family == Sockets.AfInet ? bytes[..4] : bytes);
}

/// <summary>
/// A NETLINK_SOCK_DIAG socket: asks the kernel about the sockets of the
/// network namespace it was opened in (the calling thread's; see
/// <see cref="NetworkNamespaces"/>). Each read waits at most the timeout it
/// was opened with; a dump stops at <see cref="MaxDumped"/> sockets.
/// Single-threaded: one caller at a time.
/// </summary>
public sealed unsafe class SockDiag : IDisposable
{
    /// <summary>The most sockets one dump returns: a namespace with more is described in part, and says so.</summary>
    public const int MaxDumped = 65536;

    private const ushort NlmFRequest = 1;
    private const ushort NlmFDump = 0x300;
    private const int TcpListen = 10;
    private const uint UdiagShowName = 1;
    private const uint UdiagShowPeer = 4;

    private readonly FileDescriptor socket;
    private readonly byte[] buffer = new byte[32768];
    private uint sequence;

    private SockDiag(FileDescriptor socket) => this.socket = socket;

    /// <summary>
    /// Opens one in the calling thread's network namespace; each read waits
    /// at most <paramref name="timeoutMs"/>. Throws <see cref="SensorException"/>
    /// when the socket cannot be made.
    /// </summary>
    public static SockDiag Open(int timeoutMs)
    {
        int fd = Sockets.Socket(Sockets.AfNetlink, Sockets.SockDgram | Sockets.SockCloexec, Sockets.NetlinkSockDiag);
        if (fd < 0)
            throw new SensorException($"cannot open a sock_diag socket: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        var diag = new SockDiag(new FileDescriptor(fd));
        Sockets.SetReceiveTimeout(fd, timeoutMs);
        return diag;
    }

    /// <summary>Every listening TCP socket of <paramref name="family"/> (AF_INET or AF_INET6); <paramref name="complete"/> is false when the dump stopped short.</summary>
    public List<InetDiagSocket> TcpListeners(ushort family, out bool complete) => TcpSockets(family, 1u << TcpListen, out complete);

    /// <summary>
    /// Every TCP socket of <paramref name="family"/> (AF_INET or AF_INET6) in one of the
    /// states of <paramref name="states"/> (a bit per TCP state, include/net/tcp_states.h),
    /// with its cgroup; <paramref name="complete"/> is false when the dump stopped short.
    /// </summary>
    public List<InetDiagSocket> TcpSockets(ushort family, uint states, out bool complete)
    {
        Span<byte> request = stackalloc byte[SockDiagReplies.HeaderSize + 56];
        request.Clear();
        request[16] = (byte)family;
        request[17] = Sockets.IpprotoTcp;
        BinaryPrimitives.WriteUInt32LittleEndian(request[20..], states);
        var found = new List<InetDiagSocket>();
        complete = Dump(request, payload =>
        {
            if (SockDiagReplies.TryParseInet(payload, out InetDiagSocket s))
                found.Add(s);
        });
        return found;
    }

    /// <summary>
    /// The TCP socket whose own end is <paramref name="local"/> and whose other end is
    /// <paramref name="remote"/> (an exact inet_diag lookup); null when there is none.
    /// </summary>
    public InetDiagSocket? FindTcp(ushort family, IPEndPoint local, IPEndPoint remote)
    {
        Span<byte> request = stackalloc byte[SockDiagReplies.HeaderSize + 56];
        request.Clear();
        request[16] = (byte)family;
        request[17] = Sockets.IpprotoTcp;
        BinaryPrimitives.WriteUInt32LittleEndian(request[20..], uint.MaxValue);
        // struct inet_diag_sockid at 24: sport, dport, src, dst (network order), if, cookie (any: ~0).
        Span<byte> id = request[24..];
        BinaryPrimitives.WriteUInt16BigEndian(id, (ushort)local.Port);
        BinaryPrimitives.WriteUInt16BigEndian(id[2..], (ushort)remote.Port);
        if (!local.Address.TryWriteBytes(id.Slice(4, 16), out _) || !remote.Address.TryWriteBytes(id.Slice(20, 16), out _))
            return null;
        BinaryPrimitives.WriteUInt32LittleEndian(id[40..], uint.MaxValue);
        BinaryPrimitives.WriteUInt32LittleEndian(id[44..], uint.MaxValue);
        InetDiagSocket? found = null;
        Exchange(request, NlmFRequest, payload =>
        {
            if (SockDiagReplies.TryParseInet(payload, out InetDiagSocket s))
                found = s;
        });
        return found;
    }

    /// <summary>The unix socket with this inode, with its name and its peer's inode; null when this namespace has none.</summary>
    public UnixDiagSocket? FindUnix(uint inode)
    {
        Span<byte> request = stackalloc byte[SockDiagReplies.HeaderSize + 24];
        request.Clear();
        request[16] = (byte)Sockets.AfUnix;
        BinaryPrimitives.WriteUInt32LittleEndian(request[20..], uint.MaxValue);
        BinaryPrimitives.WriteUInt32LittleEndian(request[24..], inode);
        BinaryPrimitives.WriteUInt32LittleEndian(request[28..], UdiagShowName | UdiagShowPeer);
        BinaryPrimitives.WriteUInt32LittleEndian(request[32..], uint.MaxValue);
        BinaryPrimitives.WriteUInt32LittleEndian(request[36..], uint.MaxValue);
        UnixDiagSocket? found = null;
        Exchange(request, NlmFRequest, payload =>
        {
            if (SockDiagReplies.TryParseUnix(payload, out UnixDiagSocket s))
                found = s;
        });
        return found;
    }

    /// <summary>Every listening unix socket, with its name; <paramref name="complete"/> is false when the dump stopped short.</summary>
    public List<UnixDiagSocket> UnixListeners(out bool complete)
    {
        Span<byte> request = stackalloc byte[SockDiagReplies.HeaderSize + 24];
        request.Clear();
        request[16] = (byte)Sockets.AfUnix;
        BinaryPrimitives.WriteUInt32LittleEndian(request[20..], 1u << TcpListen);
        BinaryPrimitives.WriteUInt32LittleEndian(request[28..], UdiagShowName);
        var found = new List<UnixDiagSocket>();
        complete = Dump(request, payload =>
        {
            if (SockDiagReplies.TryParseUnix(payload, out UnixDiagSocket s))
                found.Add(s);
        });
        return found;
    }

    private delegate void PayloadHandler(ReadOnlySpan<byte> payload);

    /// <summary>Sends a dump request and hands each reply to <paramref name="handle"/>; false when it stopped at <see cref="MaxDumped"/>.</summary>
    private bool Dump(Span<byte> request, PayloadHandler handle)
    {
        int count = 0;
        bool complete = true;
        Exchange(request, NlmFRequest | NlmFDump, payload =>
        {
            if (count++ < MaxDumped)
                handle(payload);
            else
                complete = false;
        });
        return complete;
    }

    /// <summary>
    /// Sends one request (its header filled in here) and reads replies until
    /// NLMSG_DONE, an error, or, for a lookup, the one answer. ENOENT is no
    /// answer; any other error or a read past the timeout throws <see cref="SensorException"/>.
    /// </summary>
    private void Exchange(Span<byte> request, ushort flags, PayloadHandler handle)
    {
        uint seq = ++sequence;
        BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)request.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(request[4..], SockDiagReplies.SockDiagByFamily);
        BinaryPrimitives.WriteUInt16LittleEndian(request[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(request[8..], seq);
        BinaryPrimitives.WriteUInt32LittleEndian(request[12..], 0);
        byte* kernel = stackalloc byte[12];
        new Span<byte>(kernel, 12).Clear();
        *(ushort*)kernel = Sockets.AfNetlink;
        fixed (byte* r = request)
        {
            if (Sockets.SendTo(socket.Fd, r, (nuint)request.Length, 0, kernel, 12) < 0)
                throw new SensorException($"sock_diag request failed: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        }
        bool dump = (flags & NlmFDump) != 0;
        while (true)
        {
            nint n;
            fixed (byte* b = buffer)
                n = Sockets.Recv(socket.Fd, b, (nuint)buffer.Length, 0);
            if (n < 0)
                throw new SensorException($"sock_diag reply failed: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
            var reader = new SockDiagReplies.MessageReader(buffer.AsSpan(0, (int)n));
            while (reader.Next(out SockDiagReplies.NetlinkMessage message))
            {
                if (message.Sequence != seq)
                    continue;
                if (message.Type == SockDiagReplies.NlmsgDone)
                    return;
                if (message.Type == SockDiagReplies.NlmsgError)
                {
                    int errno = message.Errno;
                    const int Enoent = 2;
                    if (errno is 0 or Enoent)
                        return;
                    throw new SensorException($"sock_diag: {Libc.ErrorText(errno)}");
                }
                if (message.Type == SockDiagReplies.SockDiagByFamily)
                {
                    handle(message.Payload);
                    if (!dump)
                        return;
                }
            }
        }
    }

    public void Dispose() => socket.Dispose();
}
