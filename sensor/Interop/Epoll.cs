using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>An epoll set (level-triggered, close-on-exec): waits until any of its descriptors is readable.</summary>
public sealed unsafe partial class Epoll : IDisposable
{
    private const int EpollCtlAdd = 1;
    private const uint EpollIn = 1;
    private const int Eintr = 4;
    // struct epoll_event is 12 bytes on x86-64 (packed) and 16 elsewhere: room for the larger.
    private const int EventBytes = 16;
    private const int MaxEvents = 4;

    private readonly FileDescriptor fd;

    public Epoll()
    {
        const int EpollCloexec = 0x80000;
        int n = Create(EpollCloexec);
        if (n < 0)
            throw new SensorException($"cannot create an epoll set: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        fd = new FileDescriptor(n);
    }

    /// <summary>Wakes <see cref="Wait"/> while <paramref name="watched"/> is readable.</summary>
    public void Add(int watched)
    {
        byte* ev = stackalloc byte[EventBytes];
        new Span<byte>(ev, EventBytes).Clear();
        *(uint*)ev = EpollIn;
        if (Control(fd.Fd, EpollCtlAdd, watched, ev) != 0)
            throw new SensorException($"cannot watch descriptor {watched}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/>; returns how many descriptors are readable (0 on timeout or a signal).</summary>
    public int Wait(int timeoutMs)
    {
        byte* events = stackalloc byte[EventBytes * MaxEvents];
        int n = WaitFor(fd.Fd, events, MaxEvents, timeoutMs);
        if (n >= 0)
            return n;
        int errno = Marshal.GetLastPInvokeError();
        return errno == Eintr ? 0 : throw new SensorException($"epoll_wait failed: {Libc.ErrorText(errno)}");
    }

    public void Dispose() => fd.Dispose();

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int Create(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int Control(int epfd, int op, int fd, void* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static partial int WaitFor(int epfd, void* events, int maxEvents, int timeoutMs);
}
