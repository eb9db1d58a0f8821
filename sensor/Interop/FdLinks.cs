using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// Reads a /proc/PID/fd directory with raw getdents64 and readlinkat into
/// buffers of its own: the socket descriptors and their inodes (or pipes and
/// files, or the descriptors of one file), about a
/// microsecond a link and nothing allocated per link (scanning every process
/// of a host for the holders of a socket reads every link there is).
/// </summary>
internal static unsafe partial class FdLinks
{
    private const int ORdonly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;

    /// <summary>What is done with each link a walk reads: its directory, entry name, descriptor and target text.</summary>
    private interface ILinkVisitor
    {
        void Visit(int dir, byte* name, int fd, ReadOnlySpan<byte> link);
    }

    /// <summary>
    /// Reads the links of <paramref name="fdDirectory"/> ("/proc/123/fd"), at most
    /// <paramref name="maxLinks"/>, each given to <paramref name="visitor"/> (a struct:
    /// no allocation, no indirect call). A target longer than 64 bytes is cut there:
    /// every visitor looks at its start only. Returns the links read, or -1 when the
    /// directory cannot be opened (the process is gone).
    /// </summary>
    private static int Walk<T>(string fdDirectory, ref T visitor, int maxLinks)
        where T : struct, ILinkVisitor
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
                    if (size > 0 && ParseFd(name) is int fd)
                        visitor.Visit(dir, name, fd, new ReadOnlySpan<byte>(link, (int)size));
                }
            }
            return links;
        }
        finally
        {
            _ = Close(dir); // a read-only directory: nothing to lose on close
        }
    }

    /// <summary>
    /// Appends (descriptor, socket inode) for each socket among the links of
    /// <paramref name="fdDirectory"/> ("/proc/123/fd"), reading at most
    /// <paramref name="maxLinks"/> links. Returns the links read, or -1 when the
    /// directory cannot be opened (the process is gone).
    /// </summary>
    internal static int ReadSockets(string fdDirectory, List<(int Fd, ulong Inode)> into, int maxLinks)
    {
        var sockets = new SocketLinks(into);
        return Walk(fdDirectory, ref sockets, maxLinks);
    }

    private readonly struct SocketLinks(List<(int Fd, ulong Inode)> into) : ILinkVisitor
    {
        public void Visit(int dir, byte* name, int fd, ReadOnlySpan<byte> link)
        {
            if (ParseSocket(link) is ulong inode)
                into.Add((fd, inode));
        }
    }

    /// <summary>
    /// Appends (descriptor, kind, pipe inode) for each pipe ("pipe:[N]") and each
    /// file named by a path (a FIFO, a regular file, a device) among the links of
    /// <paramref name="fdDirectory"/>, reading at most <paramref name="maxLinks"/>
    /// links; sockets are left to <see cref="ReadSockets"/>. Returns the links read,
    /// or -1 when the directory cannot be opened (the process is gone).
    /// </summary>
    internal static int ReadFiles(string fdDirectory, List<(int Fd, bool Pipe, ulong PipeInode)> into, int maxLinks)
    {
        var files = new FileLinks(into);
        return Walk(fdDirectory, ref files, maxLinks);
    }

    private readonly struct FileLinks(List<(int Fd, bool Pipe, ulong PipeInode)> into) : ILinkVisitor
    {
        public void Visit(int dir, byte* name, int fd, ReadOnlySpan<byte> link)
        {
            if (ParseBracketed(link, "pipe:["u8) is ulong pipe)
                into.Add((fd, true, pipe));
            else if (link[0] == (byte)'/')
                into.Add((fd, false, 0));
        }
    }

    /// <summary>
    /// Appends each descriptor of <paramref name="fdDirectory"/> that is the file
    /// <paramref name="target"/>: the pipe with inode <paramref name="pipeInode"/>
    /// (link "pipe:[N]"), or, when that is 0, the file with
    /// <paramref name="device"/> and <paramref name="inode"/> (kernel dev_t
    /// encoding), told by statx through the link with AT_STATX_DONT_SYNC so that no
    /// FUSE or NFS server is asked. Reads at most <paramref name="maxLinks"/> links;
    /// returns the links read, or -1 when the directory cannot be opened.
    /// </summary>
    internal static int FindFile(string fdDirectory, ulong pipeInode, uint device, ulong inode, List<int> target, int maxLinks)
    {
        var file = new OneFile(pipeInode, device, inode, target);
        return Walk(fdDirectory, ref file, maxLinks);
    }

    private readonly struct OneFile(ulong pipeInode, uint device, ulong inode, List<int> target) : ILinkVisitor
    {
        public void Visit(int dir, byte* name, int fd, ReadOnlySpan<byte> link)
        {
            const int AtStatxDontSync = 0x4000;
            const uint StatxIno = 0x100;
            if (pipeInode != 0)
            {
                if (ParseBracketed(link, "pipe:["u8) == pipeInode)
                    target.Add(fd);
                return;
            }
            if (link[0] != (byte)'/')
                return;
            byte* statx = stackalloc byte[256];
            if (StatxAt(dir, name, AtStatxDontSync, StatxIno, statx) == 0
                && *(ulong*)(statx + 32) == inode
                && ((*(uint*)(statx + 136) << 20) | (*(uint*)(statx + 140) & 0xFFFFF)) == device)
            {
                target.Add(fd);
            }
        }
    }

    /// <summary>
    /// The access mode (O_RDONLY 0, O_WRONLY 1, O_RDWR 2) and file position of descriptor
    /// <paramref name="fd"/> of process <paramref name="pid"/>, from /proc/PID/fdinfo (read
    /// by the kernel from the open file: no file system is asked); null when it cannot be read.
    /// </summary>
    internal static (int Access, long Position)? Info(int pid, int fd)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid.ToString(System.Globalization.CultureInfo.InvariantCulture)}/fdinfo/{fd.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        long? pos = null;
        int? flags = null;
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith("pos:", StringComparison.Ordinal) && long.TryParse(line.AsSpan(4).Trim(), System.Globalization.CultureInfo.InvariantCulture, out long p))
                pos = p;
            else if (line.StartsWith("flags:", StringComparison.Ordinal))
            {
                try
                {
                    flags = Convert.ToInt32(line[6..].Trim(), 8);
                }
                catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
                {
                    return null;
                }
            }
        }
        return flags is int f && pos is long at ? (f & 3, at) : null;
    }

    /// <summary>
    /// Whether descriptor <paramref name="fd"/> of <paramref name="pid"/> is a FIFO, told by
    /// statx through its link with AT_STATX_DONT_SYNC (no file system is asked).
    /// </summary>
    internal static bool IsFifo(int pid, int fd)
    {
        const int AtFdCwd = -100;
        const int AtStatxDontSync = 0x4000;
        const uint StatxType = 0x1;
        byte* statx = stackalloc byte[256];
        string path = $"/proc/{pid.ToString(System.Globalization.CultureInfo.InvariantCulture)}/fd/{fd.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        return Libc.Statx(AtFdCwd, path, AtStatxDontSync, StatxType, statx) == 0 && (*(ushort*)(statx + 28) & 0xF000) == 0x1000;
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
    internal static ulong? ParseSocket(ReadOnlySpan<byte> link) => ParseBracketed(link, "socket:["u8);

    /// <summary>The number in a link's text PREFIX123] ("pipe:[123]"); null for any other.</summary>
    internal static ulong? ParseBracketed(ReadOnlySpan<byte> link, ReadOnlySpan<byte> prefix)
    {
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

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static partial int StatxAt(int directoryFd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "readlinkat", SetLastError = true)]
    private static partial nint ReadLinkAt(int directoryFd, byte* path, byte* buffer, nuint size);
}
