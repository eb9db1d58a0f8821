using System.Diagnostics;
using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>A process that holds a socket: its identity (pid and start) and the descriptor it holds it at.</summary>
/// <param name="Pid">Its pid.</param>
/// <param name="StartTicks">Its start in clock ticks since boot, read before and after its descriptors.</param>
/// <param name="Fd">The descriptor number that holds the socket (its first, when it holds it more than once).</param>
/// <param name="Name">Its comm.</param>
public sealed record SocketHolder(int Pid, long StartTicks, int Fd, byte[] Name)
{
    /// <summary>"python3 (pid 4242)".</summary>
    public override string ToString() => $"{Abi.Printable.Of(Name)} (pid {Pid.ToString(CultureInfo.InvariantCulture)})";
}

/// <summary>Who holds each of the sockets asked about, and whether every process was read.</summary>
/// <param name="ByInode">Holders by socket inode; an inode no process holds has no entry.</param>
/// <param name="Shortfall">Why not every process was read (a limit, a process that changed under the read); null when all were.</param>
public sealed record SocketHolderScan(IReadOnlyDictionary<ulong, List<SocketHolder>> ByInode, string? Shortfall)
{
    /// <summary>Holders of <paramref name="inode"/>; empty when none was found.</summary>
    public IReadOnlyList<SocketHolder> Of(ulong inode) => ByInode.TryGetValue(inode, out List<SocketHolder>? holders) ? holders : [];
}

/// <summary>
/// Maps socket inodes to the processes holding them by reading every
/// process's /proc/PID/fd links (raw getdents64 and readlinkat,
/// <see cref="FdLinks"/>), bounded in links read and in time: the kernel
/// offers no index from a socket to its holders. A holder is named by the
/// start time read around a second look at the matching links, so a pid
/// reused during the scan is never named.
/// </summary>
public static class SocketHolders
{
    /// <summary>Links read at most in one scan: beyond, the scan stops and says so.</summary>
    public const int MaxLinks = 1_000_000;

    /// <summary>
    /// Holders of <paramref name="inodes"/> among every process but
    /// <paramref name="exceptPid"/> (the sensor itself: it holds copies of what it reads).
    /// Stops at <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp) or after
    /// <paramref name="maxLinks"/> links, and says so in <see cref="SocketHolderScan.Shortfall"/>.
    /// </summary>
    public static SocketHolderScan Find(IReadOnlySet<ulong> inodes, int exceptPid, long deadline, string proc = "/proc", int maxLinks = MaxLinks)
    {
        var found = new Dictionary<ulong, List<SocketHolder>>();
        if (inodes.Count == 0)
            return new SocketHolderScan(found, null);
        int links = 0;
        string? shortfall = null;
        var sockets = new List<(int Fd, ulong Inode)>();
        var matches = new List<(int Fd, ulong Inode)>();
        foreach (int pid in ProcfsReader.Pids(proc))
        {
            if (pid == exceptPid)
                continue;
            if (Stopwatch.GetTimestamp() > deadline)
                return new SocketHolderScan(found, "the scan of /proc/*/fd ran out of time");
            string fdDir = $"{proc}/{pid.ToString(CultureInfo.InvariantCulture)}/fd";
            sockets.Clear();
            int read = FdLinks.ReadSockets(fdDir, sockets, maxLinks - links + 1);
            if (read < 0)
                continue; // gone: what it held is closed
            links += read;
            if (links > maxLinks)
                return new SocketHolderScan(found, $"more than {maxLinks} descriptors on this host");
            matches.Clear();
            foreach ((int fd, ulong inode) in sockets)
            {
                if (inodes.Contains(inode))
                    matches.Add((fd, inode));
            }
            if (matches.Count == 0)
                continue;
            // Its start read, each link read again, its start read again: the process with that start holds them.
            if (!ProcfsReader.TryReadStat(pid, out ProcfsStat before))
                continue;
            matches.RemoveAll(m => !FdLinks.Holds(fdDir, m.Fd, m.Inode));
            if (!ProcfsReader.TryReadStat(pid, out ProcfsStat after) || after.StartTicks != before.StartTicks)
            {
                shortfall = $"pid {pid} changed while its descriptors were read";
                continue;
            }
            foreach ((int fd, ulong inode) in matches)
            {
                if (!found.TryGetValue(inode, out List<SocketHolder>? holders))
                    found[inode] = holders = [];
                if (!holders.Exists(h => h.Pid == pid))
                    holders.Add(new SocketHolder(pid, before.StartTicks, fd, before.Name));
            }
        }
        return new SocketHolderScan(found, shortfall);
    }
}
