using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// An eventfd (non-blocking, close-on-exec): another thread signals it, and the
/// event thread, which waits on it among its descriptors, wakes and resets it.
/// </summary>
public sealed unsafe partial class EventFd : IDisposable
{
    private readonly FileDescriptor fd;

    public EventFd()
    {
        const int EfdCloexec = 0x80000;
        const int EfdNonblock = 0x800;
        int n = Create(0, EfdCloexec | EfdNonblock);
        if (n < 0)
            throw new SensorException($"cannot create an eventfd: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        fd = new FileDescriptor(n);
    }

    /// <summary>The descriptor to wait on: readable while signalled.</summary>
    public int Fd => fd.Fd;

    /// <summary>Makes it readable; safe from any thread.</summary>
    public void Signal()
    {
        ulong one = 1;
        _ = Write(fd.Fd, &one, sizeof(ulong));
    }

    /// <summary>Makes it unreadable again. Reset, then look at what was signalled: nothing is missed.</summary>
    public void Reset()
    {
        ulong count;
        _ = ReadCount(fd.Fd, &count, sizeof(ulong));
    }

    public void Dispose() => fd.Dispose();

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int Create(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "write")]
    private static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "read")]
    private static partial nint ReadCount(int fd, void* buffer, nuint count);
}
