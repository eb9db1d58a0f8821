using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// The libc socket calls that reading another process's sockets needs:
/// options, names, netlink, and moving a thread between network namespaces.
/// Constants are Linux's (include/uapi/linux/*.h, asm-generic/socket.h): the
/// same on x86-64 and arm64.
/// </summary>
internal static unsafe partial class Sockets
{
    internal const ushort AfUnix = 1;
    internal const ushort AfInet = 2;
    internal const ushort AfInet6 = 10;
    internal const ushort AfNetlink = 16;

    internal const int SockStream = 1;
    internal const int SockDgram = 2;
    internal const int SockCloexec = 0x80000;

    internal const int SolSocket = 1;
    internal const int SoType = 3;
    internal const int SoRcvtimeo = 20;
    internal const int SoAcceptconn = 30;
    internal const int SoProtocol = 38;
    internal const int SoDomain = 39;
    internal const int SoCookie = 57;

    internal const int IpprotoTcp = 6;
    internal const int TcpInfo = 11;

    internal const int NetlinkSockDiag = 4;

    /// <summary>SIOCGSKNS (include/uapi/linux/sockios.h): a descriptor of the network namespace a socket lives in.</summary>
    internal const ulong SiocGskns = 0x894C;

    /// <summary>CLONE_NEWNET (include/uapi/linux/sched.h), for setns.</summary>
    internal const int CloneNewnet = 0x40000000;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Timeval
    {
        public long Seconds;
        public long Microseconds;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    internal static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    internal static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    internal static partial int GetSockName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "getpeername", SetLastError = true)]
    internal static partial int GetPeerName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    internal static partial nint SendTo(int fd, byte* buffer, nuint length, int flags, byte* address, uint addressLength);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    internal static partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, ulong request, nint argument);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    internal static partial int SetNs(int fd, int type);

    /// <summary>An int socket option, or null when the socket does not answer it.</summary>
    internal static int? IntOption(int fd, int level, int name)
    {
        int value = 0;
        uint length = sizeof(int);
        return GetSockOpt(fd, level, name, &value, &length) == 0 ? value : null;
    }

    /// <summary>The socket's cookie (SO_COOKIE, Linux 4.12): the id the kernel's records name it by; 0 when it cannot be read.</summary>
    internal static ulong Cookie(int fd)
    {
        ulong value = 0;
        uint length = sizeof(ulong);
        return GetSockOpt(fd, SolSocket, SoCookie, &value, &length) == 0 ? value : 0;
    }

    /// <summary>A TCP socket's state (TCP_INFO's first byte, include/net/tcp_states.h), or -1.</summary>
    internal static int TcpState(int fd)
    {
        byte* info = stackalloc byte[256];
        uint length = 256;
        return GetSockOpt(fd, IpprotoTcp, TcpInfo, info, &length) == 0 && length >= 1 ? info[0] : -1;
    }

    /// <summary>Sets a receive timeout on <paramref name="fd"/>, so no read waits longer than <paramref name="milliseconds"/>.</summary>
    internal static void SetReceiveTimeout(int fd, int milliseconds)
    {
        var timeout = new Timeval { Seconds = milliseconds / 1000, Microseconds = milliseconds % 1000 * 1000 };
        SetSockOpt(fd, SolSocket, SoRcvtimeo, &timeout, (uint)sizeof(Timeval));
    }
}
