using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// What a probed process reads from besides sockets, as a relay may: a pipe
/// or FIFO it holds the read end of (fed by whoever holds the write end), or a
/// spool file it tails whose content, just behind where it has read to, holds
/// the relayed bytes (fed by whoever holds the file open for writing). No
/// tracepoint sits in a pipe's or a file's write on this kernel, so the writers
/// are the processes whose descriptors can write the same file
/// (<see cref="FileWriters"/>), not a record of who wrote.
/// </summary>
public static partial class FileFeeds
{
    /// <summary>Regular files whose content is read at most per probe: those past it are not looked at.</summary>
    public const int MaxFiles = 64;

    /// <summary>How many bytes before a file's position are searched for the relayed bytes.</summary>
    public const int Window = 256 * 1024;

    /// <summary>Ancestors walked at most to tell the pipe a process was started with.</summary>
    private const int MaxAncestors = 64;

    /// <summary>
    /// File systems whose files are read for content: served by this kernel from
    /// memory or a local disk, never by a daemon or a server that may not answer
    /// (FUSE, NFS): a read there could hold the probe for good.
    /// </summary>
    private static readonly string[] LocalFileSystems = ["tmpfs", "ramfs", "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "overlay", "zfs"];

    /// <summary>
    /// The pipes, FIFOs and spool files the process <paramref name="pid"/> (open through
    /// <paramref name="handle"/>) reads from and other processes write, each with its writers
    /// (<see cref="LocalPeer.Holders"/>; the sensor, <paramref name="selfPid"/>, never among them).
    /// A spool file counts only when the <paramref name="needle"/> is in the <see cref="Window"/>
    /// bytes before its position; a pipe or FIFO no other process writes now, a file it writes
    /// itself, and an anonymous pipe only its ancestors write (the pipe it was started with) count not.
    /// What could not be read is added to <paramref name="shortfalls"/>.
    /// </summary>
    public static List<LocalPeer> Find(int pid, Pidfd handle, ReadOnlySpan<byte> needle, int selfPid, long deadline, List<string> shortfalls)
    {
        var links = new List<(int Fd, bool Pipe, ulong PipeInode)>();
        if (FdLinks.ReadFiles($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/fd", links, InboundConnections.MaxSockets) < 0)
            return [];
        var candidates = new List<(LocalPeer Peer, WrittenFile File, bool Anonymous)>();
        var ownWrites = new HashSet<WrittenFile>();
        MountTable? mounts = null;
        int files = 0;
        foreach ((int fd, bool pipe, ulong pipeInode) in links)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                shortfalls.Add("the probe ran out of time reading its pipes and files");
                break;
            }
            if (FdLinks.Info(pid, fd) is not { } info)
                continue;
            if (pipe)
            {
                var id = new WrittenFile(pipeInode, 0, 0);
                if (info.Access != 0)
                    ownWrites.Add(id);
                else
                    candidates.Add((Feed(PeerKind.Pipe, $"pipe:[{pipeInode.ToString(CultureInfo.InvariantCulture)}]"), id, true));
                continue;
            }
            using FileDescriptor? copy = handle.DuplicateFd(fd);
            if (copy?.Status(out _, cachedOnly: true) is not { } status)
                continue;
            var file = new WrittenFile(0, status.Device, status.Inode);
            if (info.Access != 0)
                ownWrites.Add(file);
            if (info.Access == 1)
                continue;
            if ((status.Mode & 0xF000) == 0x1000)
            {
                candidates.Add((Feed(PeerKind.Pipe, "fifo:" + (copy.CurrentPath() ?? "?")), file, false));
                continue;
            }
            if (!status.IsRegular || info.Position <= 0 || needle.IsEmpty || files >= MaxFiles)
                continue;
            files++;
            mounts ??= MountTable.Read(pid.ToString(CultureInfo.InvariantCulture));
            if (mounts.Find(status.MountId) is not { } mount || !LocalFileSystems.Contains(mount.FileSystem))
                continue;
            if (Holds(copy, info.Position, needle))
                candidates.Add((Feed(PeerKind.File, "file:" + (copy.CurrentPath() ?? "?")) with { Head = new CapturedHead(needle.ToArray(), Whole: true) }, file, false));
        }
        // A file it writes itself (a FIFO opened read-write, its own log) is not fed to it by another.
        candidates.RemoveAll(c => ownWrites.Contains(c.File));
        if (candidates.Count == 0)
            return [];
        FileWriterScan scan = FileWriters.Find([.. candidates.Select(c => c.File).Distinct()], selfPid, deadline);
        if (scan.Shortfall is { } why)
            shortfalls.Add(why);
        HashSet<int>? ancestors = null;
        var found = new List<LocalPeer>();
        foreach ((LocalPeer peer, WrittenFile file, bool anonymous) in candidates)
        {
            SocketHolder[] writers = [.. scan.Of(file).Where(w => w.Pid != pid)];
            // A pipe or FIFO nobody writes now fed it nothing that can be acted on; a spool file whose writer has closed it is still said.
            if (peer.Kind == PeerKind.Pipe && writers.Length == 0)
                continue;
            if (anonymous)
            {
                ancestors ??= Ancestors(pid);
                if (writers.All(w => ancestors.Contains(w.Pid)))
                    continue;
            }
            found.Add(peer with { Holders = writers });
        }
        return found;
    }

    /// <summary>
    /// Whether the process holds a pipe or FIFO read end, or a file it has read
    /// into, among <paramref name="files"/> (its first descriptors, as
    /// <see cref="FdLinks.ReadFiles"/> gave them): then it may relay what it reads.
    /// </summary>
    public static bool MayRead(int pid, List<(int Fd, bool Pipe, ulong PipeInode)> files)
    {
        foreach ((int fd, bool pipe, _) in files)
        {
            if (FdLinks.Info(pid, fd) is not { Access: not 1 } info)
                continue;
            if (pipe || info.Position > 0 || FdLinks.IsFifo(pid, fd))
                return true;
        }
        return false;
    }

    private static LocalPeer Feed(PeerKind kind, string connection) =>
        new(false, connection, InboundBasis.Listener, 0, 0, [], null, Kind: kind);

    /// <summary>Whether the <see cref="Window"/> bytes before <paramref name="position"/> hold <paramref name="needle"/>.</summary>
    private static unsafe bool Holds(FileDescriptor file, long position, ReadOnlySpan<byte> needle)
    {
        long from = Math.Max(0, position - Window);
        int length = (int)(position - from);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            int got = 0;
            fixed (byte* b = buffer)
            {
                while (got < length)
                {
                    nint n = Pread(file.Fd, b + got, (nuint)(length - got), from + got);
                    if (n <= 0)
                        break;
                    got += (int)n;
                }
            }
            return buffer.AsSpan(0, got).IndexOf(needle) >= 0;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static HashSet<int> Ancestors(int pid)
    {
        var ancestors = new HashSet<int>();
        for (int i = 0; i < MaxAncestors && pid > 1 && ProcfsReader.TryReadStat(pid, out ProcfsStat stat); i++)
        {
            pid = stat.ParentPid;
            ancestors.Add(pid);
        }
        return ancestors;
    }

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static unsafe partial nint Pread(int fd, byte* buffer, nuint count, long offset);
}
