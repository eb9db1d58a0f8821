using System.Globalization;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// Opens sock_diag sockets in the network namespace a socket lives in. A
/// netlink socket answers for the namespace it was made in, so the calling
/// thread enters the target namespace (setns), makes the socket, and comes
/// back; only that thread moves (a network namespace is per thread). The
/// namespace is the socket's own (SIOCGSKNS), not its holder's: a process
/// can enter another namespace after it made a socket, or be handed one
/// made elsewhere. Create and use an instance on one dedicated thread.
/// </summary>
public sealed class NetworkNamespaces : IDisposable
{
    private readonly FileDescriptor home;

    /// <summary>Remembers the calling thread's namespace as home. Throws <see cref="SensorException"/> when it cannot be opened.</summary>
    public NetworkNamespaces()
    {
        home = OpenOwn();
        HomeInode = InodeOf(home) ?? throw new SensorException("cannot read this thread's network namespace");
    }

    /// <summary>The home namespace's inode number (as /proc/PID/ns/net shows it).</summary>
    public ulong HomeInode { get; }

    /// <summary>The network namespace <paramref name="socketFd"/> lives in (SIOCGSKNS, Linux 4.9); null when it cannot be had.</summary>
    public static FileDescriptor? OfSocket(int socketFd)
    {
        int fd = Sockets.Ioctl(socketFd, Sockets.SiocGskns, 0);
        return fd < 0 ? null : new FileDescriptor(fd);
    }

    /// <summary>A namespace descriptor's inode number, from its /proc/self/fd link ("net:[4026531840]"); null when unreadable.</summary>
    public static ulong? InodeOf(FileDescriptor ns) => ParseInode(ns.CurrentPath());

    /// <summary>The number in a namespace link's text ("net:[4026531840]"); null for any other text.</summary>
    public static ulong? ParseInode(string? link)
    {
        if (link is null || !link.StartsWith("net:[", StringComparison.Ordinal) || !link.EndsWith(']'))
            return null;
        return ulong.TryParse(link.AsSpan(5, link.Length - 6), NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode) ? inode : null;
    }

    /// <summary>
    /// A sock_diag socket in <paramref name="ns"/> (home when null or when it
    /// is home). Throws <see cref="SensorException"/> when the namespace
    /// cannot be entered or the socket made, and <see cref="StrandedThreadException"/>
    /// when the thread cannot return home: it must then make no other socket.
    /// </summary>
    public SockDiag OpenDiag(FileDescriptor? ns, int timeoutMs)
    {
        if (ns is null || InodeOf(ns) == HomeInode)
            return SockDiag.Open(timeoutMs);
        if (Sockets.SetNs(ns.Fd, Sockets.CloneNewnet) != 0)
            throw new SensorException($"cannot enter the socket's network namespace: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        SockDiag? diag = null;
        SensorException? failed = null;
        try
        {
            diag = SockDiag.Open(timeoutMs);
        }
        catch (SensorException e)
        {
            failed = e;
        }
        if (Sockets.SetNs(home.Fd, Sockets.CloneNewnet) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            diag?.Dispose();
            throw new StrandedThreadException($"cannot return to the sensor's network namespace: {Libc.ErrorText(errno)}");
        }
        return diag ?? throw failed!;
    }

    private static FileDescriptor OpenOwn() =>
        FileDescriptor.TryOpenReadOnly("/proc/thread-self/ns/net", out int errno)
        ?? throw new SensorException($"cannot open this thread's network namespace: {Libc.ErrorText(errno)}");

    public void Dispose() => home.Dispose();
}

/// <summary>A thread that entered another network namespace could not come back: it must not make sockets any more.</summary>
public sealed class StrandedThreadException(string message) : Exception(message);
