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

    public InProcessSensor(SensorOptions options)
    {
        sink = new CountingSink(new JsonLinesSink(Stream.Null, new EcsEncoder(RunInfo.ForThisHost("bench"), new ArgumentRedactor())));
        sensor = GuardSensor.Start(options, sink);
        poller = new Thread(() =>
        {
            while (!stopping)
                sensor.Poll(50);
        })
        { IsBackground = true };
        poller.Start();
    }

    /// <summary>The sensor itself (its metrics endpoint, say).</summary>
    public GuardSensor Sensor => sensor;

    public int WatchedParent { set => sink.WatchedParent = value; }

    public long ExecsOfWatchedChildren => Interlocked.Read(ref sink.Execs);

    public ulong Drops => sensor.Kernel.ReadDrops().Aggregate(0UL, (a, b) => a + b);

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
