using System.Diagnostics;
using System.Net;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>Why a connection counts as one the probed process accepted, rather than one it made.</summary>
public enum InboundBasis
{
    /// <summary>The kernel recorded the other end's connect (it connected while Guard watched, the probed end did not).</summary>
    PeerConnected,

    /// <summary>
    /// The probed end sits on a listener's port (or, for a unix socket, carries a
    /// listener's name) and the other end does not.
    /// </summary>
    Listener,

    /// <summary>Both ends sit on listeners' ports or names: which one accepted cannot be told.</summary>
    Unsure,
}

/// <summary>What kind of thing fed a probed process.</summary>
public enum PeerKind
{
    /// <summary>A connection: loopback TCP, or a unix stream or seqpacket socket.</summary>
    Connection,

    /// <summary>A unix datagram socket, one of whose senders is the peer.</summary>
    Datagrams,

    /// <summary>A pipe or FIFO it reads; the peers are the processes that hold it open for writing.</summary>
    Pipe,

    /// <summary>A spool file it reads; the peers are the processes that hold it open for writing.</summary>
    File,
}

/// <summary>A local connection the probed process accepted (or a pipe, a spool file or a datagram socket it reads), and what is at its other end.</summary>
/// <param name="Unix">A unix socket; else loopback TCP, or a pipe or file (<paramref name="Kind"/>).</param>
/// <param name="Connection">"unix:/run/relay.sock" (an abstract name as "unix:@name"), or "127.0.0.1:4000 &lt;- 127.0.0.1:51234" (the probed end first).</param>
/// <param name="Basis">Why it counts as accepted.</param>
/// <param name="PeerInode">The other end's inode in sockfs; 0 when no file holds it any more (its holder closed it or exited).</param>
/// <param name="PeerCookie">The other end's socket cookie (TCP): the key of the stream head the sensor may have captured; 0 when unknown.</param>
/// <param name="Holders">The processes holding the other end, the probed one left out.</param>
/// <param name="PeerConnectedBy">Who the kernel recorded connecting the other end (TCP), or null.</param>
/// <param name="Head">What the kernel saw first written into this end (unix: bpf/guard.h struct guard_unix_head), or null.</param>
/// <param name="Writer">Who wrote every byte of <paramref name="Head"/> (pid, start in clock ticks), or null (not known, or more than one process).</param>
/// <param name="Kind">A connection, datagrams, a pipe or a file.</param>
/// <param name="ContentOnly">
/// It counts only when its head holds the relayed bytes: an end this process did not
/// accept (half of a socketpair, a connection it made) or one sender's datagrams.
/// </param>
public sealed record LocalPeer(
    bool Unix, string Connection, InboundBasis Basis, ulong PeerInode, ulong PeerCookie,
    IReadOnlyList<SocketHolder> Holders, GuardSockOwner? PeerConnectedBy,
    CapturedHead? Head = null, (int Pid, long StartTicks)? Writer = null,
    PeerKind Kind = PeerKind.Connection, bool ContentOnly = false);

/// <summary>What a probe of one process found.</summary>
/// <param name="Pid">The probed process.</param>
/// <param name="StartTicks">Its start, clock ticks since boot.</param>
/// <param name="Gone">It had exited (or its pid was another's) when the probe began.</param>
/// <param name="Inbound">Its accepted local connections, the one the finding is about left out.</param>
/// <param name="Shortfalls">Why the picture may be partial (a limit, a time limit, a namespace that could not be read); empty when whole.</param>
public sealed record PeerProbe(int Pid, long StartTicks, bool Gone, IReadOnlyList<LocalPeer> Inbound, IReadOnlyList<string> Shortfalls)
{
    /// <summary>A probe of a process that had exited.</summary>
    public static PeerProbe Exited(int pid, long startTicks) => new(pid, startTicks, true, [], []);
}

/// <summary>
/// Finds the local connections a process accepted, loopback TCP and unix
/// streams, and the processes at their other ends: the process's sockets
/// are duplicated through a pidfd and read directly; sock_diag, opened in
/// each socket's own network namespace, names the other end's socket (an
/// exact inet_diag lookup by the reversed 4-tuple; unix_diag's
/// UNIX_DIAG_PEER); /proc/PID/fd names its holders. The kernel's record of
/// who connected a socket (bpf/guard.h struct guard_sock_owner) tells
/// which end accepted where it has one; listeners tell it otherwise.
/// Bounded in sockets, namespaces and time; one instance per thread (it
/// moves its thread between namespaces, <see cref="NetworkNamespaces"/>).
/// </summary>
public sealed class InboundConnections : IDisposable
{
    /// <summary>Sockets read at most per probed process: a process holding more is described in part.</summary>
    public const int MaxSockets = 4096;

    /// <summary>Network namespaces read at most per probe.</summary>
    public const int MaxNamespaces = 4;

    /// <summary>How long one sock_diag read may wait, ms.</summary>
    public const int DiagTimeoutMs = 200;

    private const int TcpEstablished = 1;

    private readonly NetworkNamespaces namespaces;
    private readonly Func<int, GuardSockOwner?> connectedBy;
    private readonly Func<int, GuardUnixHead?> unixHead;
    private readonly Func<int, GuardUnixDgramHeads?> dgramHeads;
    private readonly bool unixCaptured;
    private readonly int selfPid;

    /// <summary>
    /// Probes from the calling thread (it must be the only one using this
    /// instance); <paramref name="connectedBy"/> asks the kernel who connected a
    /// socket descriptor of ours, <paramref name="unixHead"/> what was first
    /// written into a unix one (null: no record), <paramref name="dgramHeads"/> what each sender
    /// first sent to a unix datagram one. <paramref name="unixCaptured"/>: the
    /// kernel captures unix streams (guard_unix_data is attached), so a unix end with no
    /// record had nothing written into it while Guard watched. Throws <see cref="SensorException"/>
    /// when this thread's network namespace cannot be opened.
    /// </summary>
    public InboundConnections(Func<int, GuardSockOwner?> connectedBy, Func<int, GuardUnixHead?> unixHead, Func<int, GuardUnixDgramHeads?> dgramHeads, bool unixCaptured)
    {
        namespaces = new NetworkNamespaces();
        this.connectedBy = connectedBy;
        this.unixHead = unixHead;
        this.dgramHeads = dgramHeads;
        this.unixCaptured = unixCaptured;
        selfPid = Environment.ProcessId;
    }

    /// <summary>
    /// The accepted local connections of the process <paramref name="pid"/> that started at
    /// <paramref name="startTicks"/>, leaving out the socket with cookie <paramref name="exceptCookie"/>
    /// or inode <paramref name="exceptInode"/> (the one the finding is about; 0: none), by
    /// <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp); with them, the pipes,
    /// FIFOs and spool files it reads (<see cref="FileFeeds"/>, a spool file when it holds
    /// <paramref name="needle"/>), the ends of socketpairs and connections it made that
    /// another process wrote, and the senders of its datagrams (those two counting only
    /// when what they wrote holds the relayed bytes). Throws
    /// <see cref="StrandedThreadException"/> when this thread is left in another namespace.
    /// </summary>
    public PeerProbe Probe(int pid, long startTicks, ulong exceptCookie, ulong exceptInode, long deadline, ReadOnlySpan<byte> needle = default)
    {
        using Pidfd? handle = Pidfd.TryOpen(pid, out _);
        // Checked after the pidfd is open: the handle names the process with this start.
        if (handle is null || !ProcfsReader.TryReadStat(pid, out ProcfsStat stat) || stat.StartTicks != startTicks)
            return PeerProbe.Exited(pid, startTicks);
        var shortfalls = new List<string>();
        List<FileDescriptor> sockets = handle.DuplicateSockets(MaxSockets, out bool all);
        var views = new Dictionary<ulong, NamespaceView>();
        try
        {
            if (!all)
                shortfalls.Add($"it holds more than {MaxSockets} sockets; the first {MaxSockets} were read");
            var candidates = new List<(FileDescriptor Fd, SocketFacts Facts)>();
            var datagrams = new List<(FileDescriptor Fd, SocketFacts Facts)>();
            var ownUnixListeners = new List<byte[]>();
            foreach (FileDescriptor socket in sockets)
            {
                if (SocketFacts.Read(socket) is not { } facts || (exceptCookie != 0 && facts.Cookie == exceptCookie) || (exceptInode != 0 && facts.Inode == exceptInode))
                    continue;
                if (facts.Listening)
                {
                    if (facts.Family == Sockets.AfUnix && facts.LocalName is { } name)
                        ownUnixListeners.Add(name);
                    continue;
                }
                if (facts.Family == Sockets.AfUnix && facts.Type == Sockets.SockDgram)
                {
                    datagrams.Add((socket, facts));
                    continue;
                }
                if (facts.IsUnixStream || (facts.IsEstablishedTcp && IsLoopback(facts.Local) && IsLoopback(facts.Peer)))
                    candidates.Add((socket, facts));
            }
            var found = new List<(LocalPeer Peer, InboundBasis? ByListeners)>();
            foreach ((FileDescriptor socket, SocketFacts facts) in datagrams)
                found.AddRange(Senders(pid, socket, facts).Select(p => (p, (InboundBasis?)InboundBasis.Listener)));
            foreach ((FileDescriptor socket, SocketFacts facts) in candidates)
            {
                if (Stopwatch.GetTimestamp() > deadline)
                {
                    shortfalls.Add("the probe ran out of time reading its connections");
                    break;
                }
                // A socket the kernel saw this process connect is one it made, not one it accepted.
                if (!facts.IsUnixStream && connectedBy(socket.Fd) is not null)
                    continue;
                if (View(socket, views, shortfalls) is not { } view)
                    continue;
                if (facts.IsUnixStream)
                {
                    if (UnixPeer(facts, view, ownUnixListeners) is { } unix)
                        found.Add((WithHead(unix, socket), unix.Basis));
                    else if (WrittenByAnother(pid, facts, view, socket) is { } written)
                        found.Add((written, written.Basis));
                }
                else if (TcpPeer(facts, view) is { } tcp)
                {
                    found.Add(tcp);
                }
            }
            List<LocalPeer> inbound = Resolve(pid, found, deadline, shortfalls);
            inbound.AddRange(FileFeeds.Find(pid, handle, needle, selfPid, deadline, shortfalls));
            return new PeerProbe(pid, startTicks, false, inbound, shortfalls);
        }
        catch (SensorException e)
        {
            shortfalls.Add(e.Message);
            return new PeerProbe(pid, startTicks, false, [], shortfalls);
        }
        finally
        {
            foreach (FileDescriptor socket in sockets)
                socket.Dispose();
            foreach (NamespaceView view in views.Values)
                view.Dispose();
        }
    }

    /// <summary>Descriptors <see cref="AcceptedNone"/> looks at, at most: past that it cannot say.</summary>
    public const int QuickLookFds = 128;

    /// <summary>
    /// True when the process surely accepted no local connection and reads from
    /// no one: of its first <see cref="QuickLookFds"/> descriptors (all it has), no
    /// socket but the one with cookie <paramref name="exceptCookie"/> may be fed by
    /// another process (<see cref="MayBeFed"/>), and none is a pipe or FIFO read end
    /// or a file it has read into. False when it may have (then
    /// <see cref="Probe"/> tells), or holds more descriptors than that. A process
    /// that has exited accepted none. Quick and bounded (no sock_diag, no other
    /// process read): the miner that made its own connection is answered here,
    /// on the thread that found it.
    /// </summary>
    public static bool AcceptedNone(int pid, long startTicks, ulong exceptCookie)
    {
        using Pidfd? handle = Pidfd.TryOpen(pid, out _);
        if (handle is null || !ProcfsReader.TryReadStat(pid, out ProcfsStat stat) || stat.StartTicks != startTicks)
            return true;
        var sockets = new List<(int Fd, ulong Inode)>();
        int links = FdLinks.ReadSockets($"/proc/{pid.ToString(System.Globalization.CultureInfo.InvariantCulture)}/fd", sockets, QuickLookFds + 1);
        if (links > QuickLookFds)
            return false;
        foreach ((int fd, ulong inode) in sockets)
        {
            using FileDescriptor? copy = handle.DuplicateFd(fd);
            if (copy is null || SocketFacts.Read(copy, inode) is not { } facts || facts.Listening || (exceptCookie != 0 && facts.Cookie == exceptCookie))
                continue;
            if (MayBeFed(facts))
                return false;
        }
        var files = new List<(int Fd, bool Pipe, ulong PipeInode)>();
        FdLinks.ReadFiles($"/proc/{pid.ToString(System.Globalization.CultureInfo.InvariantCulture)}/fd", files, QuickLookFds + 1);
        return !FileFeeds.MayRead(pid, files);
    }

    /// <summary>
    /// A socket through which another process may feed this one: an accepted unix
    /// stream or seqpacket end (named), half of a socketpair (neither end named), a
    /// unix datagram socket others can send to (named, or half of a pair), an
    /// established loopback TCP connection.
    /// </summary>
    private static bool MayBeFed(SocketFacts facts)
    {
        if (facts.Family == Sockets.AfUnix)
        {
            if (facts.Type == Sockets.SockDgram)
                return facts.LocalName is not null || facts.PeerName is null;
            return facts.IsUnixStream && (facts.LocalName is not null || facts.PeerName is null);
        }
        return facts.IsEstablishedTcp && IsLoopback(facts.Local) && IsLoopback(facts.Peer);
    }

    /// <summary>
    /// Names the holders of each other end (the probed process left out) and,
    /// for TCP, who the kernel saw connect it, which settles which end accepted.
    /// </summary>
    private List<LocalPeer> Resolve(int pid, List<(LocalPeer Peer, InboundBasis? ByListeners)> peers, long deadline, List<string> shortfalls)
    {
        var inodes = new HashSet<ulong>(peers.Where(p => p.Peer.PeerInode != 0).Select(p => p.Peer.PeerInode));
        SocketHolderScan scan = SocketHolders.Find(inodes, selfPid, deadline);
        if (scan.Shortfall is { } why)
            shortfalls.Add(why);
        var resolved = new List<LocalPeer>();
        foreach ((LocalPeer peer, InboundBasis? byListeners) in peers)
        {
            SocketHolder[] holders = [.. scan.Of(peer.PeerInode).Where(h => h.Pid != pid)];
            // The other end held by the probed process alone is a loop within it, not a sender (unless the kernel saw another write into it).
            if (peer.PeerInode != 0 && holders.Length == 0 && scan.Of(peer.PeerInode).Count > 0 && peer.Writer is null)
                continue;
            GuardSockOwner? connector = peer.Unix ? null : PeerConnector(holders, peer.PeerInode);
            if (connector is not null)
                resolved.Add(peer with { Holders = holders, PeerConnectedBy = connector, Basis = InboundBasis.PeerConnected });
            else if (byListeners is { } basis)
                resolved.Add(peer with { Holders = holders, Basis = basis });
        }
        return resolved;
    }

    /// <summary>Who the kernel saw connect the other end, asked through a duplicate taken from its first holder.</summary>
    private GuardSockOwner? PeerConnector(IReadOnlyList<SocketHolder> holders, ulong inode)
    {
        foreach (SocketHolder holder in holders)
        {
            using Pidfd? handle = Pidfd.TryOpen(holder.Pid, out _);
            if (handle is null || !ProcfsReader.IsRunning(holder.Pid, holder.StartTicks))
                continue;
            using FileDescriptor? copy = handle.DuplicateFd(holder.Fd);
            // The descriptor number may hold another socket by now.
            if (copy is null || SocketFacts.InodeOf(copy.CurrentPath()) != inode)
                continue;
            return connectedBy(copy.Fd);
        }
        return null;
    }

    /// <summary>
    /// The loopback TCP connection's other end, with what the listeners say:
    /// <see cref="InboundBasis.Listener"/> or <see cref="InboundBasis.Unsure"/>, or null
    /// when they say this end made it (or say nothing). Null too when neither
    /// they nor a live other end leave anything to settle.
    /// </summary>
    private static (LocalPeer Peer, InboundBasis? ByListeners)? TcpPeer(SocketFacts facts, NamespaceView view)
    {
        IPEndPoint local = Normal(facts.Local!);
        IPEndPoint remote = Normal(facts.Peer!);
        InetDiagSocket? other = view.FindTcp(remote, local);
        bool localListens = view.TcpListens(local);
        InboundBasis? byListeners = !localListens ? null : view.TcpListens(remote) ? InboundBasis.Unsure : InboundBasis.Listener;
        // Neither a listener nor a live other end whose connect the kernel may have seen: one this process made.
        if (byListeners is null && other is not { Inode: not 0 })
            return null;
        return (new LocalPeer(false, $"{local} <- {remote}", byListeners ?? InboundBasis.Unsure, other?.Inode ?? 0, other?.Cookie ?? 0, [], null), byListeners);
    }

    /// <summary>The unix connection's other end, when this end carries the name of a listener it was accepted from.</summary>
    private static LocalPeer? UnixPeer(SocketFacts facts, NamespaceView view, List<byte[]> ownListeners)
    {
        UnixDiagSocket? self = view.FindUnix((uint)facts.Inode);
        byte[]? own = self?.Name ?? facts.LocalName;
        // An unnamed end made the connection (or is half of a socketpair): it was not accepted.
        if (own is null || self is null)
            return null;
        InboundBasis basis;
        if (facts.PeerName is not { } other)
        {
            basis = InboundBasis.Listener; // an accepted socket carries its listener's name; the connecting end has none
        }
        else
        {
            bool ownListens = ownListeners.Exists(n => n.AsSpan().SequenceEqual(own)) || view.UnixListens(own);
            bool otherListens = view.UnixListens(other);
            if (!ownListens)
                return null;
            basis = otherListens ? InboundBasis.Unsure : InboundBasis.Listener;
        }
        return new LocalPeer(true, "unix:" + NameText(own), basis, self.Value.PeerInode, 0, [], null);
    }

    /// <summary>
    /// The first bytes the kernel saw written into this end of a unix connection,
    /// and their writer; none, where the kernel captures, when nothing was written.
    /// </summary>
    private LocalPeer WithHead(LocalPeer peer, FileDescriptor socket)
    {
        if (unixHead(socket.Fd) is not { } head)
            return unixCaptured ? peer with { Head = new CapturedHead(ReadOnlyMemory<byte>.Empty, Whole: true) } : peer;
        return peer with { Head = HeadBytes(head), Writer = WriterOf(head) };
    }

    private static CapturedHead HeadBytes(in GuardUnixHead head)
    {
        int length = Math.Min((int)head.Length, GuardUnixHead.Capacity);
        return new CapturedHead(((ReadOnlySpan<byte>)head.Data)[..length].ToArray(), length < GuardUnixHead.Capacity);
    }

    /// <summary>The process that wrote every byte of the head; null when none or more than one did.</summary>
    private static (int Pid, long StartTicks)? WriterOf(in GuardUnixHead head) =>
        head.OneWriter ? ((int)head.Pid, ClockTicks.FromBootNs(head.StartTimeNs)) : null;

    /// <summary>
    /// An end of a unix stream or seqpacket connection this process did not accept (half
    /// of a socketpair, whose other half a parent or child may hold, or a connection it
    /// made) that one other process wrote into while Guard watched: it may feed a relay,
    /// and counts when what was written holds the relayed bytes. The writer the kernel
    /// saw is the sender, whoever holds the other end.
    /// </summary>
    private LocalPeer? WrittenByAnother(int pid, SocketFacts facts, NamespaceView view, FileDescriptor socket)
    {
        if (unixHead(socket.Fd) is not { } head || WriterOf(head) is not { } writer || writer.Pid == pid)
            return null;
        UnixDiagSocket? self = view.FindUnix((uint)facts.Inode);
        string connection = facts.PeerName is { } other ? "unix:" + NameText(other) + " (a connection it made)" : "unix:socketpair";
        return new LocalPeer(true, connection, InboundBasis.Listener, self?.PeerInode ?? 0, 0, [], null, HeadBytes(head), writer, ContentOnly: true);
    }

    /// <summary>
    /// Each sender (other than this process) of the datagrams the unix datagram socket received
    /// while Guard watched, with what it sent first: each counts when that holds the relayed bytes.
    /// </summary>
    private List<LocalPeer> Senders(int pid, FileDescriptor socket, SocketFacts facts)
    {
        var senders = new List<LocalPeer>();
        if (dgramHeads(socket.Fd) is not { } heads)
            return senders;
        string connection = "unix:" + (facts.LocalName is { } name ? NameText(name) : "unnamed") + " (datagrams)";
        for (int i = 0; i < GuardUnixDgramHeads.Writers; i++)
        {
            GuardUnixHead head = heads.Heads[i];
            if (WriterOf(head) is { } writer && writer.Pid != pid)
                senders.Add(new LocalPeer(true, connection, InboundBasis.Listener, 0, 0, [], null, HeadBytes(head), writer, PeerKind.Datagrams, ContentOnly: true));
        }
        return senders;
    }

    /// <summary>A unix name for people: a path as it is, an abstract name after "@"; control bytes escaped (<see cref="Printable"/>).</summary>
    public static string NameText(byte[] name) =>
        name.Length > 0 && name[0] == 0 ? "@" + Printable.Of(name.AsSpan(1)) : Printable.Of(name);

    private NamespaceView? View(FileDescriptor socket, Dictionary<ulong, NamespaceView> views, List<string> shortfalls)
    {
        using FileDescriptor? ns = NetworkNamespaces.OfSocket(socket.Fd);
        ulong key = ns is null ? namespaces.HomeInode : NetworkNamespaces.InodeOf(ns) ?? namespaces.HomeInode;
        if (views.TryGetValue(key, out NamespaceView? view))
            return view;
        if (views.Count >= MaxNamespaces)
        {
            shortfalls.Add($"its sockets span more than {MaxNamespaces} network namespaces");
            return null;
        }
        try
        {
            view = new NamespaceView(namespaces.OpenDiag(ns, DiagTimeoutMs));
        }
        catch (SensorException e)
        {
            shortfalls.Add(e.Message);
            return null;
        }
        views[key] = view;
        return view;
    }

    /// <summary>127.0.0.0/8 or ::1, an IPv4-mapped form included.</summary>
    public static bool IsLoopback(IPEndPoint? endpoint) => endpoint is not null && IPAddress.IsLoopback(Normal(endpoint).Address);

    /// <summary>An IPv4-mapped IPv6 endpoint as IPv4; any other as it is.</summary>
    public static IPEndPoint Normal(IPEndPoint endpoint) =>
        endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;

    public void Dispose() => namespaces.Dispose();

    /// <summary>One network namespace's sock_diag socket and what was dumped from it, each dump made once.</summary>
    private sealed class NamespaceView(SockDiag diag) : IDisposable
    {
        private List<IPEndPoint>? tcpListeners;
        private List<byte[]>? unixListeners;

        public InetDiagSocket? FindTcp(IPEndPoint local, IPEndPoint remote)
        {
            // The other end may be IPv4 or IPv6 (a dual-stack socket sees IPv4 peers as mapped addresses).
            if (local.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            {
                return diag.FindTcp(Sockets.AfInet, local, remote)
                    ?? diag.FindTcp(Sockets.AfInet6, new IPEndPoint(local.Address.MapToIPv6(), local.Port), new IPEndPoint(remote.Address.MapToIPv6(), remote.Port));
            }
            return diag.FindTcp(Sockets.AfInet6, local, remote);
        }

        /// <summary>Whether a TCP listener takes connections to <paramref name="endpoint"/> (its address, or any).</summary>
        public bool TcpListens(IPEndPoint endpoint)
        {
            if (tcpListeners is null)
            {
                tcpListeners = [];
                foreach (ushort family in new[] { Sockets.AfInet, Sockets.AfInet6 })
                {
                    foreach (InetDiagSocket l in diag.TcpListeners(family, out _))
                        tcpListeners.Add(Normal(l.Local));
                }
            }
            return tcpListeners.Exists(l => l.Port == endpoint.Port
                && (l.Address.Equals(endpoint.Address) || l.Address.Equals(IPAddress.Any) || l.Address.Equals(IPAddress.IPv6Any)));
        }

        public UnixDiagSocket? FindUnix(uint inode) => diag.FindUnix(inode);

        /// <summary>Whether a unix listener in this namespace has <paramref name="name"/>.</summary>
        public bool UnixListens(byte[] name)
        {
            unixListeners ??= [.. diag.UnixListeners(out _).Select(l => l.Name).OfType<byte[]>()];
            return unixListeners.Exists(n => n.AsSpan().SequenceEqual(name));
        }

        public void Dispose() => diag.Dispose();
    }
}
