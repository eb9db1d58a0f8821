using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// Reads the kernel's ring buffer through libbpf and hands each record, as a
/// span over the ring's own memory, to the decoder: nothing is copied or
/// allocated per record.
/// </summary>
public sealed unsafe class RingBufferReader : IDisposable
{
    private readonly nint ring;
    private readonly RecordDecoder decoder;
    private readonly IRecordHandler handler;
    private readonly Epoll wakeups = new();
    private readonly EventFd wakeup = new();
    private GCHandle self;
    private ExceptionDispatchInfo? failure;
    private int handled;

    /// <summary>
    /// The most records one <see cref="Poll"/> handles (4,096, a few ms): libbpf
    /// reads on while the kernel keeps writing, so a flood that keeps the ring
    /// full would otherwise hold the reader in one poll, and nothing between
    /// polls (late judging, hashes, heartbeats, the watchdog's stamp) would run.
    /// </summary>
    public const int RecordsPerPoll = 4096;

    /// <summary>What the callback returns to stop libbpf's read once <see cref="RecordsPerPoll"/> are handled (-ECANCELED); the record it follows was handled, and consumed.</summary>
    private const int BudgetSpent = -125;

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
            wakeups.Dispose();
            wakeup.Dispose();
            throw new SensorException($"cannot open the ring buffer: {Libc.ErrorText(errno)}");
        }
        // libbpf's own epoll set, nested in ours, so other descriptors can wake the reader too.
        wakeups.Add(Libbpf.RingBufferEpollFd(ring));
        wakeups.Add(wakeup.Fd);
    }

    /// <summary>Ends the current or next <see cref="Poll"/> wait at once. Safe from any thread.</summary>
    public void Wake() => wakeup.Signal();

    /// <summary>Also wakes <see cref="Poll"/> while <paramref name="fd"/> is readable (work finished on another thread).</summary>
    public void WakeOn(int fd) => wakeups.Add(fd);

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for the kernel (or a descriptor
    /// given to <see cref="WakeOn"/>) to wake us, then handles every record
    /// there. The kernel wakes the reader only once a batch has built up, so
    /// the wait is a timer as much as a wakeup.
    /// </summary>
    /// <returns>The number of records handled, at most <see cref="RecordsPerPoll"/>.</returns>
    public int Poll(int timeoutMs)
    {
        if (timeoutMs > 0)
            wakeups.Wait(timeoutMs);
        wakeup.Reset();
        handled = 0;
        int n = Libbpf.RingBufferConsume(ring);
        if (failure is { } f)
        {
            failure = null;
            f.Throw();
        }
        const int EINTR = 4;
        if (n == BudgetSpent && handled >= RecordsPerPoll)
            return handled;
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
            return ++reader.handled >= RecordsPerPoll ? BudgetSpent : 0;
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
        Libbpf.RingBufferFree(ring);
        wakeups.Dispose();
        wakeup.Dispose();
        self.Free();
    }
}
