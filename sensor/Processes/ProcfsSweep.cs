using System.Runtime.InteropServices;

namespace Guard.Sensor.Processes;

/// <summary>
/// One pass over /proc spread over many calls: each <see cref="Step"/> reads
/// one 4 KiB block of the directory (at most about 200 processes) and each
/// process's stat line with raw syscalls into buffers of its own, so nothing
/// is allocated per process, and hands back those its caller does not know
/// by pid and start. /proc lists processes in pid order and a read resumes
/// where the last stopped, so a pass sees every process that lives through it.
/// Kernel threads are left out.
/// </summary>
public sealed unsafe partial class ProcfsSweep : IDisposable
{
    private const int ORdonly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;
    private const int BlockBytes = 4096;
    private const int StatBytes = 1024;

    private readonly byte[] block = GC.AllocateArray<byte>(BlockBytes, pinned: true);
    private readonly byte[] stat = GC.AllocateArray<byte>(StatBytes, pinned: true);
    private int directory = -1;

    /// <summary>Whether a pass is under way.</summary>
    public bool Running => directory >= 0;

    /// <summary>Starts a pass from the first process; one under way starts again. False when /proc cannot be opened.</summary>
    public bool Begin()
    {
        End();
        directory = Open("/proc", ORdonly | ODirectory | OCloexec);
        return directory >= 0;
    }

    /// <summary>
    /// Reads the next block of the pass: for each process in it that
    /// <paramref name="known"/> (pid, start in clock ticks) does not know, adds
    /// it to <paramref name="unknown"/>. Returns false once the pass is over
    /// (or none is under way); the pass then ends by itself.
    /// </summary>
    public bool Step(Func<int, long, bool> known, List<(int Pid, long StartTicks)> unknown)
    {
        if (directory < 0)
            return false;
        nint n;
        fixed (byte* entries = block)
            n = GetDents64(directory, entries, BlockBytes);
        if (n <= 0)
        {
            End();
            return false;
        }
        ReadOnlySpan<byte> entriesRead = block.AsSpan(0, (int)n);
        Span<byte> path = stackalloc byte[32];
        for (int at = 0; at + 19 < entriesRead.Length;)
        {
            // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
            ushort length = MemoryMarshal.Read<ushort>(entriesRead[(at + 16)..]);
            if (length == 0)
                break;
            ReadOnlySpan<byte> name = entriesRead.Slice(at + 19, Math.Min(length - 19, entriesRead.Length - at - 19));
            at += length;
            name = name[..Math.Max(name.IndexOf((byte)0), 0)];
            if (!TryParsePid(name, out int pid) || name.Length + 6 > path.Length)
                continue;
            name.CopyTo(path);
            "/stat\0"u8.CopyTo(path[name.Length..]);
            if (!TryReadStat(path, out long startTicks, out bool kernelThread) || kernelThread || known(pid, startTicks))
                continue;
            unknown.Add((pid, startTicks));
        }
        return true;
    }

    /// <summary>A directory entry's name as a pid: digits only, as /proc names processes.</summary>
    internal static bool TryParsePid(ReadOnlySpan<byte> name, out int pid)
    {
        pid = 0;
        if (name.IsEmpty || name.Length > 9)
            return false;
        foreach (byte b in name)
        {
            if (b is < (byte)'0' or > (byte)'9')
                return false;
            pid = (pid * 10) + (b - '0');
        }
        return pid > 0;
    }

    private bool TryReadStat(ReadOnlySpan<byte> relativePath, out long startTicks, out bool kernelThread)
    {
        startTicks = 0;
        kernelThread = false;
        int fd;
        fixed (byte* p = relativePath)
            fd = OpenAt(directory, p, ORdonly | OCloexec);
        if (fd < 0)
            return false; // gone since the directory was read
        nint n;
        fixed (byte* buffer = stat)
            n = Read(fd, buffer, StatBytes);
        _ = Close(fd); // read-only: nothing to lose on close
        if (n <= 0 || !ProcfsReader.TryParseStat(stat.AsSpan(0, (int)n), out Range _, out _, out startTicks, out uint flags))
            return false;
        kernelThread = (flags & ProcfsReader.PfKthread) != 0;
        return true;
    }

    private void End()
    {
        if (directory >= 0)
            _ = Close(directory);
        directory = -1;
    }

    /// <summary>Closes /proc if a pass is under way.</summary>
    public void Dispose() => End();

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true)]
    private static partial int OpenAt(int directoryFd, byte* path, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "getdents64", SetLastError = true)]
    private static partial nint GetDents64(int fd, byte* buffer, nuint count);
}
