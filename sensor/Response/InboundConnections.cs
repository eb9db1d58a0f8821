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

/// <summary>A local connection the probed process accepted, and what is at its other end.</summary>
/// <param name="Unix">A unix stream socket; else loopback TCP.</param>
/// <param name="Connection">"unix:/run/relay.sock" (an abstract name as "unix:@name"), or "127.0.0.1:4000 &lt;- 127.0.0.1:51234" (the probed end first).</param>
/// <param name="Basis">Why it counts as accepted.</param>
/// <param name="PeerInode">The other end's inode in sockfs; 0 when no file holds it any more (its holder closed it or exited).</param>
/// <param name="PeerCookie">The other end's socket cookie (TCP): the key of the stream head the sensor may have captured; 0 when unknown.</param>
/// <param name="Holders">The processes holding the other end, the probed one left out.</param>
/// <param name="PeerConnectedBy">Who the kernel recorded connecting the other end (TCP), or null.</param>
/// <param name="Head">What the kernel saw first written into this end (unix: bpf/guard.h struct guard_unix_head), or null.</param>
/// <param name="Writer">Who wrote the first of <paramref name="Head"/> (pid, start in clock ticks), or null.</param>
public sealed record LocalPeer(
    bool Unix, string Connection, InboundBasis Basis, ulong PeerInode, ulong PeerCookie,
    IReadOnlyList<SocketHolder> Holders, GuardSockOwner? PeerConnectedBy,
    CapturedHead? Head = null, (int Pid, long StartTicks)? Writer = null);

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
    private readonly bool unixCaptured;
    private readonly int selfPid;

    /// <summary>
    /// Probes from the calling thread (it must be the only one using this
    /// instance); <paramref name="connectedBy"/> asks the kernel who connected a
    /// socket descriptor of ours, <paramref name="unixHead"/> what was first
    /// written into a unix one (null: no record). <paramref name="unixCaptured"/>: the
    /// kernel captures unix streams (guard_unix_data is attached), so a unix end with no
    /// record had nothing written into it while Guard watched. Throws <see cref="SensorException"/>
    /// when this thread's network namespace cannot be opened.
    /// </summary>
    public InboundConnections(Func<int, GuardSockOwner?> connectedBy, Func<int, GuardUnixHead?> unixHead, bool unixCaptured)
    {
        namespaces = new NetworkNamespaces();
        this.connectedBy = connectedBy;
        this.unixHead = unixHead;
        this.unixCaptured = unixCaptured;
        selfPid = Environment.ProcessId;
    }

    /// <summary>
    /// The accepted local connections of the process <paramref name="pid"/> that started at
    /// <paramref name="startTicks"/>, leaving out the socket with cookie <paramref name="exceptCookie"/>
    /// or inode <paramref name="exceptInode"/> (the one the finding is about; 0: none), by
    /// <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp). Throws
    /// <see cref="StrandedThreadException"/> when this thread is left in another namespace.
    /// </summary>
    public PeerProbe Probe(int pid, long startTicks, ulong exceptCookie, ulong exceptInode, long deadline)
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
                if (facts.IsUnixStream || (facts.IsEstablishedTcp && IsLoopback(facts.Local) && IsLoopback(facts.Peer)))
                    candidates.Add((socket, facts));
            }
            var found = new List<(LocalPeer Peer, InboundBasis? ByListeners)>();
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
                }
                else if (TcpPeer(facts, view) is { } tcp)
                {
                    found.Add(tcp);
                }
            }
            return new PeerProbe(pid, startTicks, false, Resolve(pid, found, deadline, shortfalls), shortfalls);
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
    /// True when the process surely accepted no local connection: of its first
    /// <see cref="QuickLookFds"/> descriptors (all it has), no socket but the
    /// one with cookie <paramref name="exceptCookie"/> is a named unix stream or an
    /// established loopback TCP connection. False when it may have (then
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
            if ((facts.IsUnixStream && facts.LocalName is not null) || (facts.IsEstablishedTcp && IsLoopback(facts.Local) && IsLoopback(facts.Peer)))
                return false;
        }
        return true;
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
            // The other end held by the probed process alone is a loop within it, not a sender.
            if (peer.PeerInode != 0 && holders.Length == 0 && scan.Of(peer.PeerInode).Count > 0)
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
        int length = Math.Min((int)head.Length, GuardUnixHead.Capacity);
        byte[] bytes = ((ReadOnlySpan<byte>)head.Data)[..length].ToArray();
        (int, long)? writer = head.Pid == 0 ? null : ((int)head.Pid, ClockTicks.FromBootNs(head.StartTimeNs));
        return peer with { Head = new CapturedHead(bytes, length < GuardUnixHead.Capacity), Writer = writer };
    }

    /// <summary>A unix name for people: a path as it is, an abstract name after "@".</summary>
    public static string NameText(byte[] name) =>
        name.Length > 0 && name[0] == 0 ? "@" + Encoding.UTF8.GetString(name.AsSpan(1)) : Encoding.UTF8.GetString(name);

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
