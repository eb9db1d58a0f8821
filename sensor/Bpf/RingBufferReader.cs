using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// Reads the kernel's ring buffer (through <see cref="RingBufferMapping"/>)
/// and hands each record, as a span over the ring's own memory, to the
/// decoder: nothing is copied or allocated per record (a record that wraps
/// past the ring's end aside: it is copied once).
/// </summary>
public sealed class RingBufferReader : IDisposable
{
    private readonly RingBufferMapping ring;
    private readonly RecordDecoder decoder;
    private readonly IRecordHandler handler;
    private readonly Epoll wakeups = new();
    private readonly EventFd wakeup = new();

    /// <summary>
    /// The most records one <see cref="Poll"/> handles (4,096, a few ms): the
    /// kernel writes on while we read, so a flood that keeps the ring full
    /// would otherwise hold the reader in one poll, and nothing between polls
    /// (late judging, hashes, heartbeats, the watchdog's stamp) would run.
    /// </summary>
    public const int RecordsPerPoll = 4096;

    /// <summary>Maps the ring of map descriptor <paramref name="mapFd"/>. Throws <see cref="SensorException"/> when the kernel refuses.</summary>
    public RingBufferReader(int mapFd, RecordDecoder decoder, IRecordHandler handler)
    {
        this.decoder = decoder;
        this.handler = handler;
        try
        {
            ring = new RingBufferMapping(mapFd);
            wakeups.Add(mapFd);
            wakeups.Add(wakeup.Fd);
        }
        catch (SensorException e)
        {
            ring?.Dispose();
            wakeups.Dispose();
            wakeup.Dispose();
            throw new SensorException($"cannot open the ring buffer: {e.Message}");
        }
    }

    /// <summary>Ends the current or next <see cref="Poll"/> wait at once. Safe from any thread.</summary>
    public void Wake() => wakeup.Signal();

    /// <summary>Also wakes <see cref="Poll"/> while <paramref name="fd"/> is readable (work finished on another thread).</summary>
    public void WakeOn(int fd) => wakeups.Add(fd);

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for the kernel (or a descriptor
    /// given to <see cref="WakeOn"/>) to wake us, then handles every record
    /// there. The kernel wakes the reader only once a batch has built up, so
    /// the wait is a timer as much as a wakeup. A record whose handling throws
    /// is consumed all the same (it is not read twice), and the exception passes on.
    /// </summary>
    /// <returns>The number of records handled, at most <see cref="RecordsPerPoll"/>.</returns>
    public int Poll(int timeoutMs)
    {
        if (timeoutMs > 0)
            wakeups.Wait(timeoutMs);
        wakeup.Reset();
        int handled = 0;
        while (handled < RecordsPerPoll && ring.TryPeek(out ReadOnlySpan<byte> record))
        {
            try
            {
                decoder.Decode(record, handler);
            }
            finally
            {
                ring.Consume();
            }
            handled++;
        }
        return handled;
    }

    public void Dispose()
    {
        ring.Dispose();
        wakeups.Dispose();
        wakeup.Dispose();
    }
}
