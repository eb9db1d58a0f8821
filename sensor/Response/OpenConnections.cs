using System.Net;
using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Response;

/// <summary>
/// The TCP connections a process holds, read before it is killed from the
/// sockets themselves: each socket fd is duplicated through a pidfd and asked
/// for its peer and state. (The /proc/net/tcp tables walk every bucket of the
/// host's hash table: about 5 ms each on a large host, too slow to sit before a kill.)
/// </summary>
public static unsafe partial class OpenConnections
{
    private const int SolSocket = 1;
    private const int SoProtocol = 38;
    private const int IpprotoTcp = 6;
    private const int TcpInfo = 11;
    private const ushort AfInet = 2;
    private const ushort AfInet6 = 10;
    private const int TcpListen = 10;

    private static readonly string[] States = ["", "established", "syn-sent", "syn-recv", "fin-wait1", "fin-wait2", "time-wait", "close", "close-wait", "last-ack", "listen", "closing"];

    /// <summary>"PEER (state)" for each TCP socket of the process, "listening on :PORT" for its listeners.</summary>
    public static IReadOnlyList<string> Of(int pid, long startTicks)
    {
        using Pidfd? process = Pidfd.TryOpen(pid, out _);
        // The pid checked with the pidfd open: these are the named process's sockets.
        if (process is null || !Processes.ProcfsReader.TryReadStat(pid, out Processes.ProcfsStat stat) || stat.StartTicks != startTicks)
            return [];
        var found = new List<string>();
        foreach (FileDescriptor socket in process.DuplicateSockets())
        {
            using (socket)
            {
                if (ReadConnection(socket.Fd) is { } connection)
                    found.Add(connection);
            }
        }
        return found;
    }

    /// <summary>"PEER (state)" or "listening on ADDRESS:PORT" for a TCP socket, read with getsockopt(TCP_INFO); null for any other socket.</summary>
    private static string? ReadConnection(int fd)
    {
        int protocol = 0;
        uint length = sizeof(int);
        if (GetSockOpt(fd, SolSocket, SoProtocol, &protocol, &length) != 0 || protocol != IpprotoTcp)
            return null;
        byte* info = stackalloc byte[256];
        length = 256;
        if (GetSockOpt(fd, IpprotoTcp, TcpInfo, info, &length) != 0 || length < 1)
            return null;
        int state = info[0]; // tcpi_state
        byte* address = stackalloc byte[128];
        uint size = 128;
        if (state == TcpListen)
            return GetSockName(fd, address, &size) == 0 && Endpoint(address) is { } local ? $"listening on {local}" : null;
        return GetPeerName(fd, address, &size) == 0 && Endpoint(address) is { } peer
            ? $"{peer} ({(state < States.Length ? States[state] : "?")})"
            : null;
    }

    /// <summary>A sockaddr_in or sockaddr_in6 as ADDRESS:PORT ([ADDRESS]:PORT for IPv6).</summary>
    private static string? Endpoint(byte* sockaddr)
    {
        ushort family = *(ushort*)sockaddr;
        int port = (sockaddr[2] << 8) | sockaddr[3];
        if (family == AfInet)
            return $"{new IPAddress(new ReadOnlySpan<byte>(sockaddr + 4, 4))}:{port}";
        if (family == AfInet6)
            return $"[{new IPAddress(new ReadOnlySpan<byte>(sockaddr + 8, 16))}]:{port}";
        return null;
    }

    [LibraryImport("libc", EntryPoint = "getsockopt")]
    private static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport("libc", EntryPoint = "getpeername")]
    private static partial int GetPeerName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "getsockname")]
    private static partial int GetSockName(int fd, byte* address, uint* length);
}
