using System.Globalization;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>An owned file descriptor (a directory, a pidfd, a file to read) that closes once.</summary>
public sealed unsafe partial class FileDescriptor : SafeHandle
{
    private const int ORdonly = 0;
    private const int ONoctty = 0x100;
    private const int ONofollow = 0x20000;
    private const int ONonblock = 0x800;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;
    private const int ORdwr = 2;
    private const int OCreat = 0x40;
    private const int LockExclusive = 2;
    private const int OPath = 0x200000;
    private const int Eintr = 4;

    public FileDescriptor(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    public int Fd => (int)handle;

    public static FileDescriptor OpenDirectory(string path)
    {
        int fd = Open(path, ORdonly | ODirectory | OCloexec);
        if (fd < 0)
            throw new SensorException($"cannot open {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        return new FileDescriptor(fd);
    }

    /// <summary>Opens <paramref name="path"/> read-only (close-on-exec); null, with the errno, when it cannot.</summary>
    public static FileDescriptor? TryOpenReadOnly(string path, out int errno)
    {
        int fd = Open(path, ORdonly | OCloexec);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new FileDescriptor(fd);
    }

    /// <summary>
    /// Opens (creating, mode 0600) the lock file at <paramref name="path"/> and takes
    /// an exclusive flock on it, waiting for whoever holds it; closing releases it.
    /// Throws <see cref="SensorException"/> when the file cannot be opened or locked.
    /// </summary>
    public static FileDescriptor LockFile(string path)
    {
        int fd = Open(path, ORdwr | OCreat | OCloexec, 0x180);
        if (fd < 0)
            throw new SensorException($"cannot open {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        var locked = new FileDescriptor(fd);
        int rc;
        while ((rc = Flock(fd, LockExclusive)) != 0 && Marshal.GetLastPInvokeError() == Eintr)
        {
        }
        if (rc == 0)
            return locked;
        int errno = Marshal.GetLastPInvokeError();
        locked.Dispose();
        throw new SensorException($"cannot lock {path}: {Libc.ErrorText(errno)}");
    }

    /// <summary>FILEID_KERNFS in include/linux/exportfs.h: a kernfs file handle, whose 8 bytes are the node's id.</summary>
    private const int FileidKernfs = 0xfe;

    /// <summary>
    /// Opens the directory of the kernfs file system under <paramref name="mount"/>
    /// (a cgroup hierarchy) whose node id, its inode number, is <paramref name="id"/>:
    /// open_by_handle_at with a kernfs handle. Null, with the errno, when it
    /// cannot: ESTALE when it is gone, EPERM without CAP_DAC_READ_SEARCH.
    /// </summary>
    public static FileDescriptor? OpenKernfsDirectory(FileDescriptor mount, ulong id, out int errno)
    {
        // struct file_handle: handle_bytes, handle_type, then the handle.
        byte* handle = stackalloc byte[16];
        *(uint*)handle = sizeof(ulong);
        *(int*)(handle + 4) = FileidKernfs;
        *(ulong*)(handle + 8) = id;
        int fd = OpenByHandleAt(mount.Fd, handle, ORdonly | ODirectory | OCloexec);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new FileDescriptor(fd);
    }

    /// <summary>
    /// A handle on what <paramref name="path"/> names, without opening it
    /// (O_PATH): no driver's open runs and nothing is read, so a device, a FIFO
    /// or a socket cannot act on being named. Null, with errno, when it cannot.
    /// </summary>
    public static FileDescriptor? OpenPathOnly(string path, out int errno)
    {
        int fd = Open(path, OPath | OCloexec);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new FileDescriptor(fd);
    }

    /// <summary>The path the open file has now, as /proc/self/fd shows it (a removed one ends in " (deleted)"); null when it cannot be read.</summary>
    public string? CurrentPath()
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{Fd.ToString(CultureInfo.InvariantCulture)}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// A handle (O_PATH, not following a final symlink) on <paramref name="name"/>
    /// looked up in this directory: one lookup in this directory's file system,
    /// and a mount on <paramref name="name"/> entered, not searched. Null, with errno, when it cannot.
    /// </summary>
    public FileDescriptor? OpenPathOnlyIn(string name, out int errno)
    {
        int fd = OpenAt(Fd, name, OPath | ONofollow | OCloexec);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new FileDescriptor(fd);
    }

    /// <summary>The target of the symlink <paramref name="name"/> in this directory; null when it is none.</summary>
    public string? ReadLinkIn(string name)
    {
        const int Capacity = 4096;
        byte* buffer = stackalloc byte[Capacity];
        nint n = ReadLinkAt(Fd, name, buffer, Capacity);
        return n is > 0 and < Capacity ? System.Text.Encoding.UTF8.GetString(buffer, (int)n) : null;
    }

    /// <summary>
    /// The same file opened for reading (through /proc/self/fd, the one way to
    /// reopen an O_PATH handle), non-blocking and never as a controlling
    /// terminal. Check <see cref="Status"/> first: this runs the file's open.
    /// Null, with errno, when it cannot.
    /// </summary>
    public FileDescriptor? ReopenForReading(out int errno)
    {
        int fd = Open($"/proc/self/fd/{Fd.ToString(CultureInfo.InvariantCulture)}", ORdonly | ONonblock | ONoctty | OCloexec);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new FileDescriptor(fd);
    }

    /// <summary>
    /// What statx says of this file; null, with errno, when it cannot.
    /// <paramref name="cachedOnly"/>: what the kernel holds already
    /// (AT_STATX_DONT_SYNC), so a FUSE or NFS server is never asked: device,
    /// inode and type are right, size and times may be stale.
    /// </summary>
    public FileStatus? Status(out int errno, bool cachedOnly = false)
    {
        const int AtEmptyPath = 0x1000;
        const int AtStatxDontSync = 0x4000;
        const uint Wanted = 0x1 | 0x2 | 0x40 | 0x80 | 0x100 | 0x200 | 0x1000; // type, mode, mtime, ctime, ino, size, mnt_id
        byte* statx = stackalloc byte[256];
        if (Libc.Statx(Fd, "", AtEmptyPath | (cachedOnly ? AtStatxDontSync : 0), Wanted, statx) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        errno = 0;
        // struct statx (include/uapi/linux/stat.h): fixed offsets on every architecture.
        return new FileStatus(
            Mode: *(ushort*)(statx + 28),
            Inode: *(ulong*)(statx + 32),
            Size: *(long*)(statx + 40),
            ChangedNs: (*(long*)(statx + 96) * 1_000_000_000) + *(uint*)(statx + 104),
            ModifiedNs: (*(long*)(statx + 112) * 1_000_000_000) + *(uint*)(statx + 120),
            Device: FileStatus.KernelDevice(*(uint*)(statx + 136), *(uint*)(statx + 140)),
            MountId: *(ulong*)(statx + 144));
    }

    /// <summary>read(2), retried on EINTR: the bytes read, 0 at the end, or -errno.</summary>
    public int Read(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = ReadBytes(Fd, p, (nuint)buffer.Length);
                if (n >= 0)
                    return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Eintr)
                    return -errno;
            }
        }
    }

    /// <summary>tmpfs's f_type (linux/magic.h TMPFS_MAGIC): shmem, where a memfd lives.</summary>
    public const long TmpfsMagic = 0x01021994;

    /// <summary>hugetlbfs's f_type (HUGETLBFS_MAGIC): a memfd made with MFD_HUGETLB.</summary>
    public const long HugetlbfsMagic = 0x958458f6;

    /// <summary>The file system type (fstatfs's f_type, a linux/magic.h value) of what this descriptor names, O_PATH included; null when fstatfs fails.</summary>
    public long? FileSystemMagic()
    {
        // struct statfs on 64-bit Linux: f_type first, 120 bytes in all.
        long* buffer = stackalloc long[16];
        return FStatFs((int)handle, buffer) == 0 ? buffer[0] : null;
    }

    protected override bool ReleaseHandle() => Close((int)handle) == 0;

    [LibraryImport("libc", EntryPoint = "fstatfs")]
    private static partial int FStatFs(int fd, long* buffer);

    [LibraryImport("libc", EntryPoint = "open_by_handle_at", SetLastError = true)]
    private static partial int OpenByHandleAt(int mountFd, byte* handle, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode = 0);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int dirFd, string path, int flags);

    [LibraryImport("libc", EntryPoint = "readlinkat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint ReadLinkAt(int dirFd, string path, byte* buffer, nuint size);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadBytes(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

/// <summary>
/// What statx says of a file. <see cref="Device"/> is dev_t as the kernel
/// encodes it in memory (major &lt;&lt; 20 | minor), as BPF programs read it.
/// </summary>
public readonly record struct FileStatus(uint Mode, ulong Inode, long Size, long ChangedNs, long ModifiedNs, uint Device, ulong MountId)
{
    /// <summary>Its identity as statx shows it.</summary>
    public FileId Id => new(Device, Inode);

    /// <summary>S_ISREG: a regular file, the only kind exec runs and the only kind read here.</summary>
    public bool IsRegular => (Mode & 0xF000) == 0x8000;

    /// <summary>S_ISLNK: a symbolic link (a handle opened O_PATH | O_NOFOLLOW on one).</summary>
    public bool IsSymlink => (Mode & 0xF000) == 0xA000;

    /// <summary>The kernel's in-memory dev_t (MKDEV, include/linux/kdev_t.h) of a major and minor.</summary>
    public static uint KernelDevice(uint major, uint minor) => (major << 20) | (minor & 0xFFFFF);
}

/// <summary>A file's identity: its device (kernel dev_t encoding, major &lt;&lt; 20 | minor) and inode.</summary>
public readonly record struct FileId(uint Device, ulong Inode);
