using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// Reads a /proc/PID/fd directory with raw getdents64 and readlinkat into
/// buffers of its own: the socket descriptors and their inodes, about a
/// microsecond a link and nothing allocated per link (scanning every process
/// of a host for the holders of a socket reads every link there is).
/// </summary>
internal static unsafe partial class FdLinks
{
    private const int ORdonly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;

    /// <summary>
    /// Appends (descriptor, socket inode) for each socket among the links of
    /// <paramref name="fdDirectory"/> ("/proc/123/fd"), reading at most
    /// <paramref name="maxLinks"/> links. Returns the links read, or -1 when the
    /// directory cannot be opened (the process is gone).
    /// </summary>
    internal static int ReadSockets(string fdDirectory, List<(int Fd, ulong Inode)> into, int maxLinks)
    {
        int dir = Open(fdDirectory, ORdonly | ODirectory | OCloexec);
        if (dir < 0)
            return -1;
        try
        {
            byte* entries = stackalloc byte[4096];
            byte* link = stackalloc byte[64];
            int links = 0;
            while (links < maxLinks)
            {
                nint n = GetDents64(dir, entries, 4096);
                if (n <= 0)
                    break;
                for (int at = 0; at < n && links < maxLinks;)
                {
                    // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
                    ushort length = *(ushort*)(entries + at + 16);
                    if (length == 0)
                        break;
                    byte* name = entries + at + 19;
                    at += length;
                    if (name[0] == (byte)'.')
                        continue;
                    links++;
                    nint size = ReadLinkAt(dir, name, link, 64);
                    if (size > 0 && ParseSocket(new ReadOnlySpan<byte>(link, (int)size)) is ulong inode && ParseFd(name) is int fd)
                        into.Add((fd, inode));
                }
            }
            return links;
        }
        finally
        {
            _ = Close(dir); // a read-only directory: nothing to lose on close
        }
    }

    /// <summary>Whether descriptor <paramref name="fd"/> of <paramref name="fdDirectory"/> is the socket <paramref name="inode"/> now.</summary>
    internal static bool Holds(string fdDirectory, int fd, ulong inode)
    {
        byte* link = stackalloc byte[64];
        byte[] path = System.Text.Encoding.ASCII.GetBytes($"{fdDirectory}/{fd.ToString(System.Globalization.CultureInfo.InvariantCulture)}\0");
        fixed (byte* p = path)
        {
            nint size = ReadLinkAt(-100, p, link, 64);
            return size > 0 && ParseSocket(new ReadOnlySpan<byte>(link, (int)size)) == inode;
        }
    }

    /// <summary>The inode in a link's text "socket:[123]"; null for any other.</summary>
    internal static ulong? ParseSocket(ReadOnlySpan<byte> link)
    {
        ReadOnlySpan<byte> prefix = "socket:["u8;
        if (!link.StartsWith(prefix) || link.Length < prefix.Length + 2 || link[^1] != (byte)']')
            return null;
        ulong inode = 0;
        foreach (byte b in link[prefix.Length..^1])
        {
            if (b is < (byte)'0' or > (byte)'9' || inode > (ulong.MaxValue / 10) - 10)
                return null;
            inode = (inode * 10) + (ulong)(b - '0');
        }
        return inode;
    }

    private static int? ParseFd(byte* name)
    {
        int fd = 0;
        for (int i = 0; name[i] != 0; i++)
        {
            if (name[i] is < (byte)'0' or > (byte)'9' || i > 9)
                return null;
            fd = (fd * 10) + (name[i] - '0');
        }
        return fd;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "getdents64", SetLastError = true)]
    private static partial nint GetDents64(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "readlinkat", SetLastError = true)]
    private static partial nint ReadLinkAt(int directoryFd, byte* path, byte* buffer, nuint size);
}
