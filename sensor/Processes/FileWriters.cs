using System.Diagnostics;
using System.Globalization;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>A pipe or file whose writers are looked for: an anonymous pipe by its pipefs inode, else a file by device and inode.</summary>
/// <param name="PipeInode">The pipe's inode ("pipe:[N]"); 0 for a file named by a path (a FIFO, a regular file).</param>
/// <param name="Device">The file's device, kernel dev_t encoding (major &lt;&lt; 20 | minor); 0 for a pipe.</param>
/// <param name="Inode">The file's inode; 0 for a pipe.</param>
public readonly record struct WrittenFile(ulong PipeInode, uint Device, ulong Inode);

/// <summary>Who holds each of the files asked about open for writing, and whether every process was read.</summary>
/// <param name="ByFile">Writers by file; a file no process holds for writing has no entry.</param>
/// <param name="Shortfall">Why not every process was read; null when all were.</param>
public sealed record FileWriterScan(IReadOnlyDictionary<WrittenFile, List<SocketHolder>> ByFile, string? Shortfall)
{
    /// <summary>Writers of <paramref name="file"/>; empty when none was found.</summary>
    public IReadOnlyList<SocketHolder> Of(WrittenFile file) => ByFile.TryGetValue(file, out List<SocketHolder>? writers) ? writers : [];
}

/// <summary>
/// Finds the processes that hold a pipe, a FIFO or a file open for writing
/// (O_WRONLY or O_RDWR, from /proc/PID/fdinfo) by reading every process's
/// /proc/PID/fd links (<see cref="FdLinks"/>): what the kernel offers to say
/// who may write what a relay reads from a pipe or a spool file, since no
/// tracepoint sits in a pipe's or a file's write on this kernel. Bounded in
/// links and time like <see cref="SocketHolders"/>; a writer is named by the
/// start time read around a second look, so a reused pid is never named.
/// </summary>
public static class FileWriters
{
    /// <summary>
    /// Writers of each of <paramref name="files"/> among every process but
    /// <paramref name="exceptPid"/>, by <paramref name="deadline"/> (a <see cref="Stopwatch"/>
    /// timestamp), reading at most <paramref name="maxLinks"/> links per file.
    /// </summary>
    public static FileWriterScan Find(IReadOnlyCollection<WrittenFile> files, int exceptPid, long deadline, string proc = "/proc", int maxLinks = SocketHolders.MaxLinks)
    {
        var found = new Dictionary<WrittenFile, List<SocketHolder>>();
        if (files.Count == 0)
            return new FileWriterScan(found, null);
        string? shortfall = null;
        var fds = new List<int>();
        int links = 0;
        foreach (int pid in ProcfsReader.Pids(proc))
        {
            if (pid == exceptPid)
                continue;
            if (Stopwatch.GetTimestamp() > deadline)
                return new FileWriterScan(found, "the scan of /proc/*/fd for writers ran out of time");
            string fdDir = $"{proc}/{pid.ToString(CultureInfo.InvariantCulture)}/fd";
            bool first = true;
            foreach (WrittenFile file in files)
            {
                fds.Clear();
                int read = FdLinks.FindFile(fdDir, file.PipeInode, file.Device, file.Inode, fds, maxLinks - links + 1);
                if (read < 0)
                    break; // gone: what it held is closed
                // Each file reads the same links again: they are counted once.
                if (first)
                    links += read;
                first = false;
                if (links > maxLinks)
                    return new FileWriterScan(found, $"more than {maxLinks} descriptors on this host");
                if (fds.Count == 0)
                    continue;
                if (!ProcfsReader.TryReadStat(pid, out ProcfsStat before))
                    continue;
                bool writes = fds.Exists(fd => FdLinks.Info(pid, fd) is { Access: 1 or 2 });
                if (!ProcfsReader.TryReadStat(pid, out ProcfsStat after) || after.StartTicks != before.StartTicks)
                {
                    shortfall = $"pid {pid} changed while its descriptors were read";
                    continue;
                }
                if (!writes)
                    continue;
                if (!found.TryGetValue(file, out List<SocketHolder>? writers))
                    found[file] = writers = [];
                writers.Add(new SocketHolder(pid, before.StartTicks, fds[0], before.Name));
            }
        }
        return new FileWriterScan(found, shortfall);
    }
}
