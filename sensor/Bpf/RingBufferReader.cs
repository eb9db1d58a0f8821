using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// Reads the kernel's ring buffer through libbpf and hands each record, as a
/// span over the ring's own memory, to the decoder: nothing is copied or
/// allocated per record. A wait ends when the kernel wakes the reader, at the
/// timeout, or when another thread calls <see cref="Wake"/> (an eventfd beside
/// the ring's epoll descriptor): work finished off this thread is picked up
/// without waiting for the timer.
/// </summary>
public sealed unsafe class RingBufferReader : IDisposable
{
    private readonly nint ring;
    private readonly FileDescriptor epoll;
    private readonly FileDescriptor wakeup;
    private readonly RecordDecoder decoder;
    private readonly IRecordHandler handler;
    private GCHandle self;
    private ExceptionDispatchInfo? failure;

    public RingBufferReader(int mapFd, RecordDecoder decoder, IRecordHandler handler)
    {
        this.decoder = decoder;
        this.handler = handler;
        self = GCHandle.Alloc(this);
        ring = Libbpf.RingBufferNew(mapFd, &OnSample, GCHandle.ToIntPtr(self), 0);
        if (ring == 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            self.Free();
            throw new SensorException($"cannot open the ring buffer: {Libc.ErrorText(errno)}");
        }
        int epollFd = Libc.EpollCreate1(Libc.EpollCloexec);
        int eventFd = Libc.EventFd(0, Libc.EfdCloexec | Libc.EfdNonblock);
        epoll = new FileDescriptor(epollFd);
        wakeup = new FileDescriptor(eventFd);
        if (epollFd < 0 || eventFd < 0 || !Watch(Libbpf.RingBufferEpollFd(ring)) || !Watch(eventFd))
        {
            int errno = Marshal.GetLastPInvokeError();
            Dispose();
            throw new SensorException($"cannot wait on the ring buffer: {Libc.ErrorText(errno)}");
        }
    }

    private bool Watch(int fd)
    {
        byte* e = stackalloc byte[16];
        new Span<byte>(e, 16).Clear();
        *(uint*)e = Libc.EpollIn;
        return fd >= 0 && Libc.EpollCtl(epoll.Fd, Libc.EpollCtlAdd, fd, e) == 0;
    }

    /// <summary>Ends the current or next <see cref="Poll"/> wait at once. Safe from any thread.</summary>
    public void Wake()
    {
        ulong one = 1;
        _ = Libc.Write(wakeup.Fd, &one, sizeof(ulong)); // a full counter still wakes
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for the kernel to wake us,
    /// then handles every record there. The kernel wakes the reader only once
    /// a batch has built up, so the wait is a timer as much as a wakeup.
    /// </summary>
    /// <returns>The number of records handled.</returns>
    public int Poll(int timeoutMs)
    {
        byte* events = stackalloc byte[2 * 16];
        int n = Libc.EpollWait(epoll.Fd, events, 2, timeoutMs);
        n = n < 0 ? -Marshal.GetLastPInvokeError() : 0;
        ulong woken;
        _ = Libc.Read(wakeup.Fd, &woken, sizeof(ulong)); // non-blocking: clears a wake, if any
        if (n >= 0)
            n = Libbpf.RingBufferConsume(ring);
        if (failure is { } f)
        {
            failure = null;
            f.Throw();
        }
        const int EINTR = 4;
        if (n < 0 && n != -EINTR)
            throw new SensorException($"reading the ring buffer failed: {Libc.ErrorText(-n)}");
        return Math.Max(n, 0);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnSample(nint context, void* data, nuint size)
    {
        var reader = (RingBufferReader)GCHandle.FromIntPtr(context).Target!;
        try
        {
            reader.decoder.Decode(new ReadOnlySpan<byte>(data, (int)size), reader.handler);
            return 0;
        }
        catch (Exception e)
        {
            // Unwinding through libbpf is not allowed; stop this poll and rethrow.
            reader.failure = ExceptionDispatchInfo.Capture(e);
            return -1;
        }
    }

    public void Dispose()
    {
        if (!self.IsAllocated)
            return;
        epoll?.Dispose();
        wakeup?.Dispose();
        Libbpf.RingBufferFree(ring);
        self.Free();
    }
}
