using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>An owned file descriptor (a directory, a pidfd) that closes once.</summary>
public sealed partial class FileDescriptor : SafeHandle
{
    private const int ORdonly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;

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

    protected override bool ReleaseHandle() => Close((int)handle) == 0;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
