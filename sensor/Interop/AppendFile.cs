using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// A log file opened for writing at its end only (O_APPEND, mode 0600, or 0640
/// in a directory shared with a group (<see cref="SharedDirectory"/>), never
/// through a symlink): each <see cref="Write"/> of whole lines lands after
/// whatever any other process appended, so lines from several writers never
/// interleave within a line (the kernel holds the inode's lock for the whole
/// write(2) of a regular file). flock(2) locks on it let a rotation wait for
/// writers that are mid-write.
/// </summary>
public sealed unsafe partial class AppendFile : IDisposable
{
    private const int OWronly = 1;
    private const int OCreat = 0x40;
    private const int OAppend = 0x400;
    private const int ONofollow = 0x20000;
    private const int OCloexec = 0x80000;
    private const int ORdonly = 0;
    private const int ODirectory = 0x10000;
    private const int LockShared = 1;
    private const int LockExclusive = 2;
    private const int LockUnlock = 8;
    private const int Eintr = 4;
    private const int SeekCurrent = 1;

    /// <summary>rw------- : events and actions are for root alone, unless their directory is shared (<see cref="SharedDirectory"/>: 0640).</summary>
    public const int Mode = SharedDirectory.PrivateFileMode;

    private readonly FileDescriptor fd;

    private AppendFile(FileDescriptor fd, string path)
    {
        this.fd = fd;
        Path = path;
    }

    /// <summary>The path this file was opened at (it may have been renamed since: see <see cref="IsAt"/>).</summary>
    public string Path { get; }

    /// <summary>
    /// Opens <paramref name="path"/> for appending, creating it with mode 0600,
    /// and sets 0600 on a file that was there with another mode; in a shared
    /// directory 0640 and the directory's group instead (<see cref="SharedDirectory"/>).
    /// </summary>
    /// <exception cref="IOException">It cannot be opened (the errno's text), or a symlink is at the path.</exception>
    public static AppendFile Open(string path)
    {
        int raw = OpenFile(path, OWronly | OCreat | OAppend | ONofollow | OCloexec, Mode);
        if (raw < 0)
            throw new IOException($"cannot open {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        var fd = new FileDescriptor(raw);
        try
        {
            SharedDirectory.Fit(raw, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? "/", path);
        }
        catch (IOException)
        {
            fd.Dispose();
            throw;
        }
        return new AppendFile(fd, path);
    }

    /// <summary>What statx says of the open file (size, inode, mode).</summary>
    /// <exception cref="IOException">statx failed.</exception>
    public FileStatus Status() =>
        fd.Status(out int errno) ?? throw new IOException($"cannot stat {Path}: {Libc.ErrorText(errno)}");

    /// <summary>The file's birth time (statx btime) in UTC, or null where the file system keeps none.</summary>
    public DateTime? BornUtc()
    {
        const int AtEmptyPath = 0x1000;
        const uint StatxBtime = 0x800;
        byte* statx = stackalloc byte[256];
        if (Libc.Statx(fd.Fd, "", AtEmptyPath, StatxBtime, statx) != 0 || (*(uint*)statx & StatxBtime) == 0)
            return null;
        // struct statx: stx_mask at 0, stx_btime (tv_sec, tv_nsec) at 80.
        return DateTime.UnixEpoch.AddSeconds(*(long*)(statx + 80)).AddTicks(*(uint*)(statx + 88) / 100);
    }

    /// <summary>Whether <see cref="Path"/> still names this file: false once it was renamed away (a rotation, logrotate) or removed.</summary>
    public bool IsAt()
    {
        ulong? atPath = Libc.InodeOf(Path);
        return atPath is { } inode && fd.Status(out _) is { } own && own.Inode == inode;
    }

    /// <summary>Waits for a shared lock: writers hold one while they write, a rotation takes the exclusive one.</summary>
    public void LockForWriting() => Lock(LockShared);

    /// <summary>Waits for the exclusive lock: no writer is mid-write until <see cref="Unlock"/>.</summary>
    public void LockForRotation() => Lock(LockExclusive);

    /// <summary>Releases this descriptor's lock.</summary>
    public void Unlock() => _ = Flock(fd.Fd, LockUnlock);

    /// <summary>
    /// Appends <paramref name="bytes"/>; returns how many were written: all, or
    /// fewer with <paramref name="errno"/> set (ENOSPC on a full disk, EFBIG, EIO).
    /// </summary>
    public int Write(ReadOnlySpan<byte> bytes, out int errno)
    {
        errno = 0;
        int done = 0;
        fixed (byte* p = bytes)
        {
            while (done < bytes.Length)
            {
                nint n = WriteBytes(fd.Fd, p + done, (nuint)(bytes.Length - done));
                if (n > 0)
                {
                    done += (int)n;
                    continue;
                }
                int e = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (e == Eintr)
                    continue;
                errno = e == 0 ? 5 : e; // a write of 0 bytes to a regular file: call it EIO
                break;
            }
        }
        return done;
    }

    /// <summary>
    /// Takes back the last <paramref name="bytes"/> this descriptor appended (a
    /// line cut short by a full disk), under the exclusive lock, unless another
    /// writer appended after them. Returns whether it did.
    /// </summary>
    public bool TakeBack(int bytes)
    {
        Lock(LockExclusive);
        try
        {
            long end = Seek(fd.Fd, 0, SeekCurrent);
            return end >= bytes && fd.Status(out _) is { } s && s.Size == end && FTruncate(fd.Fd, end - bytes) == 0;
        }
        finally
        {
            Lock(LockShared);
        }
    }

    /// <summary>Reads up to <paramref name="buffer"/>'s length from <paramref name="offset"/>; the bytes read, 0 at the end.</summary>
    /// <exception cref="IOException">pread failed.</exception>
    public int ReadAt(Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = PRead(fd.Fd, p, (nuint)buffer.Length, offset);
                if (n >= 0)
                    return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Eintr)
                    throw new IOException($"cannot read {Path}: {Libc.ErrorText(errno)}");
            }
        }
    }

    /// <summary>
    /// An exclusive flock on <paramref name="directory"/> itself, waited for:
    /// rotations of the files in it, by any process, happen one at a time.
    /// Dispose to release.
    /// </summary>
    /// <exception cref="IOException">The directory cannot be opened or locked.</exception>
    public static FileDescriptor LockDirectory(string directory)
    {
        int raw = OpenFile(directory, ORdonly | ODirectory | OCloexec, 0);
        if (raw < 0)
            throw new IOException($"cannot open {directory}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        var fd = new FileDescriptor(raw);
        int rc;
        while ((rc = Flock(raw, LockExclusive)) != 0 && Marshal.GetLastPInvokeError() == Eintr)
        {
        }
        if (rc == 0)
            return fd;
        int errno = Marshal.GetLastPInvokeError();
        fd.Dispose();
        throw new IOException($"cannot lock {directory}: {Libc.ErrorText(errno)}");
    }

    /// <summary>Closes the file, releasing its lock.</summary>
    public void Dispose() => fd.Dispose();

    private void Lock(int operation)
    {
        while (Flock(fd.Fd, operation) != 0 && Marshal.GetLastPInvokeError() == Eintr)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFile(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteBytes(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long Seek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int FTruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint PRead(int fd, byte* buffer, nuint count, long offset);
}
