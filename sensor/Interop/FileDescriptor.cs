using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>An owned file descriptor (a directory, a pidfd) that closes once.</summary>
public sealed partial class FileDescriptor : SafeHandle
{
    private const int ORdonly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;
    private const int ORdwr = 2;
    private const int OCreat = 0x40;
    private const int LockExclusive = 2;
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
    public static unsafe FileDescriptor? OpenKernfsDirectory(FileDescriptor mount, ulong id, out int errno)
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

    /// <summary>The path the open file has now, as /proc/self/fd shows it (a removed one ends in " (deleted)"); null when it cannot be read.</summary>
    public string? CurrentPath()
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{Fd.ToString(System.Globalization.CultureInfo.InvariantCulture)}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    protected override bool ReleaseHandle() => Close((int)handle) == 0;

    [LibraryImport("libc", EntryPoint = "open_by_handle_at", SetLastError = true)]
    private static unsafe partial int OpenByHandleAt(int mountFd, byte* handle, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode = 0);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
