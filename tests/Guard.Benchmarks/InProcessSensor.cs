using Guard.Sensor;
using Guard.Sensor.Events;
using Guard.Sensor.Output;

namespace Guard.Benchmarks;

/// <summary>
/// The same sensor `guard watch` runs (kernel, table, ECS encoding), writing
/// to a null stream, polled on its own thread. Counts the exec events of one
/// process's children so delivery can be checked.
/// </summary>
internal sealed class InProcessSensor : IDisposable
{
    private readonly GuardSensor sensor;
    private readonly CountingSink sink;
    private readonly Thread poller;
    private volatile bool stopping;
    private volatile bool paused;

    public InProcessSensor(SensorOptions options)
    {
        sink = new CountingSink(new JsonLinesSink(Stream.Null, new EcsEncoder(RunInfo.ForThisHost("bench"), new ArgumentRedactor())));
        sensor = GuardSensor.Start(options, sink);
        poller = new Thread(() =>
        {
            while (!stopping)
            {
                if (paused)
                    Thread.Sleep(1);
                else
                    sensor.Poll(50);
            }
        })
        { IsBackground = true, Name = "bench poller" };
        poller.Start();
    }

    /// <summary>The sensor itself (its metrics endpoint, say).</summary>
    public GuardSensor Sensor => sensor;

    public int WatchedParent { set => sink.WatchedParent = value; }

    public long ExecsOfWatchedChildren => Interlocked.Read(ref sink.Execs);

    public ulong Drops => sensor.Kernel.ReadDrops().Aggregate(0UL, (a, b) => a + b);

    /// <summary>
    /// While true the ring is not read: the kernel's programs run and fill the
    /// ring (16 MiB holds a 10,000-connection storm's records), and user space
    /// costs nothing. Set false, the records are read as they would have been.
    /// </summary>
    public bool Paused { set => paused = value; }

    /// <summary>Reads the ring until a poll finds nothing (after a pause).</summary>
    public void Drain()
    {
        paused = true;
        Thread.Sleep(60); // the poller's current wait ends
        paused = false;
        Thread.Sleep(300);
    }

    public void Reset() => Interlocked.Exchange(ref sink.Execs, 0);

    /// <summary>Waits until the sensor has caught up with what the kernel sent.</summary>
    public void Settle(long expectedExecs, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (ExecsOfWatchedChildren < expectedExecs && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
    }

    public void Dispose()
    {
        stopping = true;
        poller.Join();
        sensor.Dispose();
        // The lineage recorder a sensor leaves pinned goes too: the baseline runs measure a bare host.
        Guard.Sensor.Bpf.LineageKernel.Remove();
    }

    private sealed class CountingSink(IEventSink inner) : IEventSink
    {
        public long Execs;
        public volatile int WatchedParent;

        public void Write(SensorEvent e)
        {
            if (e.Type == EventType.Exec && e.Process?.Parent?.Pid == WatchedParent)
                Interlocked.Increment(ref Execs);
            inner.Write(e);
        }

        public void Flush() => inner.Flush();

        public void Dispose() => inner.Dispose();
    }
}
