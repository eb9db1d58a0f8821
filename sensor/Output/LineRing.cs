namespace Guard.Sensor.Output;

/// <summary>
/// A bounded queue of whole lines (each ending in '\n') between the thread
/// that drains the ring and one output's writer: a ring of bytes the producer
/// copies each line into, or drops it (counted) when it does not fit, and
/// never waits. One consumer takes runs of whole lines out without a lock.
/// </summary>
public sealed class LineRing : IDisposable
{
    private readonly byte[] ring;
    private readonly long mask;
    private readonly object adding = new();
    // No spinning before the wait blocks: the writer is woken once per poll (5 ms), and its spin
    // (sched_yield in a loop) took a CPU from the monitored work on a small machine.
    private readonly ManualResetEventSlim ready = new(false, spinCount: 0);
    // Bytes taken by the consumer, and bytes added by producers, since the start.
    private long head;
    private long tail;
    private long dropped;

    /// <summary>A queue of <paramref name="capacityBytes"/> (rounded up to a power of two, at least 64 KiB).</summary>
    public LineRing(int capacityBytes)
    {
        int capacity = (int)Math.Min(1L << 30, Math.Max(1 << 16, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacityBytes, 1))));
        ring = new byte[capacity];
        mask = capacity - 1;
    }

    /// <summary>The queue's size in bytes.</summary>
    public int Capacity => ring.Length;

    /// <summary>The longest line taken: a quarter of the queue, so one line never crowds out the rest.</summary>
    public int MaxLine => ring.Length / 4;

    /// <summary>Lines refused since the start: the queue was full, or the line longer than <see cref="MaxLine"/>.</summary>
    public long Dropped => Interlocked.Read(ref dropped);

    /// <summary>Bytes waiting to be taken.</summary>
    public long Pending => Volatile.Read(ref tail) - Volatile.Read(ref head);

    /// <summary>
    /// Adds <paramref name="first"/> then <paramref name="second"/> as one
    /// line (the last byte must be '\n'), or drops it when it does not fit;
    /// never waits. Returns whether it was added.
    /// </summary>
    public bool TryAdd(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second = default)
    {
        int length = first.Length + second.Length;
        bool wake;
        lock (adding)
        {
            long t = tail;
            if (length > MaxLine || t + length - Volatile.Read(ref head) > ring.Length)
            {
                dropped++;
                return false;
            }
            Copy(first, t);
            Copy(second, t + first.Length);
            Interlocked.Exchange(ref tail, t + length);
            wake = t + length - Volatile.Read(ref head) > ring.Length / 2;
        }
        // Writers wake on Wake() after each batch; a queue half full wakes them at once.
        if (wake)
            Wake();
        return true;
    }

    /// <summary>Wakes the consumer if it waits: the producer calls this after each batch of lines.</summary>
    public void Wake()
    {
        if (!ready.IsSet)
            ready.Set();
    }

    /// <summary>
    /// Copies out as many whole lines as <paramref name="into"/> holds (at
    /// least one line when <paramref name="into"/> is at least <see cref="MaxLine"/>
    /// long) and removes them from the queue; 0 when it is empty. For the one consumer only.
    /// </summary>
    public int Take(Span<byte> into)
    {
        long h = head;
        long available = Volatile.Read(ref tail) - h;
        if (available == 0)
            return 0;
        int n = (int)Math.Min(available, into.Length);
        int start = (int)(h & mask);
        int firstPart = Math.Min(n, ring.Length - start);
        ring.AsSpan(start, firstPart).CopyTo(into);
        ring.AsSpan(0, n - firstPart).CopyTo(into[firstPart..]);
        if (n < available)
        {
            int end = into[..n].LastIndexOf((byte)'\n') + 1;
            n = end > 0 ? end : n;
        }
        Volatile.Write(ref head, h + n);
        return n;
    }

    /// <summary>Waits up to <paramref name="timeout"/> for lines; true when some wait.</summary>
    public bool Wait(TimeSpan timeout)
    {
        if (Pending > 0)
            return true;
        ready.Reset();
        Interlocked.MemoryBarrier();
        if (Pending > 0)
            return true;
        ready.Wait(timeout);
        return Pending > 0;
    }

    /// <summary>Counts the lines still waiting (at a stop that gave up on them), and removes them.</summary>
    public long Discard()
    {
        long lines = 0;
        var buffer = new byte[1 << 16];
        int n;
        while ((n = Take(buffer)) > 0)
            lines += buffer.AsSpan(0, n).Count((byte)'\n');
        return lines;
    }

    /// <summary>Releases the consumer's wait handle.</summary>
    public void Dispose() => ready.Dispose();

    private void Copy(ReadOnlySpan<byte> bytes, long at)
    {
        int start = (int)(at & mask);
        int firstPart = Math.Min(bytes.Length, ring.Length - start);
        bytes[..firstPart].CopyTo(ring.AsSpan(start));
        bytes[firstPart..].CopyTo(ring);
    }
}
