using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>Where one output's lines end up: a stream, a rotating file, a syslog socket. Called from the output's own thread only.</summary>
public interface IOutputTarget : IDisposable
{
    /// <summary>
    /// Writes whole lines (each ending in '\n'); returns how many were lost
    /// (0 normally, with <see cref="LastError"/> saying why otherwise). May
    /// block (a full pipe, a peer that does not read) until <see cref="Abort"/>.
    /// </summary>
    int Write(ReadOnlySpan<byte> lines);

    /// <summary>The latest error, or null once writing works again.</summary>
    string? LastError { get; }

    /// <summary>Reopens the file at its path (SIGHUP after logrotate); other targets do nothing.</summary>
    void Reopen();

    /// <summary>Periodic work (a rotation by age), about once a second.</summary>
    void Tick(DateTime utcNow);

    /// <summary>From another thread: gives up a blocked <see cref="Write"/> (closes its socket); writes after it lose their lines.</summary>
    void Abort();
}

/// <summary>
/// One output behind its own bounded <see cref="LineRing"/>, written by a
/// thread of its own: a slow or failing output drops (and counts) its own
/// lines and never holds up the thread that drains the ring, nor another output.
/// </summary>
public sealed class QueuedOutput : IDisposable
{
    /// <summary>Queue size when none is configured: 4 MiB, several seconds of a busy host's lines.</summary>
    public const int DefaultQueueBytes = 4 << 20;

    private readonly IOutputTarget target;
    private readonly Thread thread;
    private readonly byte[] batch;
    private long written;
    private long failed;
    private long discarded;
    private volatile bool reopen;
    private volatile bool completing;
    private int disposed;
    private volatile string? unexpected;

    /// <summary>Starts the writer thread of output <paramref name="name"/> for <paramref name="target"/>, which it owns.</summary>
    public QueuedOutput(string name, IOutputTarget target, int queueBytes = DefaultQueueBytes)
    {
        Name = name;
        this.target = target;
        Queue = new LineRing(queueBytes);
        batch = new byte[Math.Max(Queue.MaxLine, 1 << 16)];
        thread = new Thread(Drain) { IsBackground = true, Name = $"guard output {name}" };
        thread.Start();
    }

    /// <summary>stdout, file, syslog or action_log.</summary>
    public string Name { get; }

    /// <summary>The queue the producer adds lines to.</summary>
    public LineRing Queue { get; }

    /// <summary>What this output did since the start; safe from any thread.</summary>
    public OutputHealth Health => new(Name, Interlocked.Read(ref written), Queue.Dropped + Interlocked.Read(ref discarded), Interlocked.Read(ref failed), target.LastError ?? unexpected);

    /// <summary>Asks the writer to reopen its file before its next write (SIGHUP); safe from a signal handler.</summary>
    public void RequestReopen()
    {
        reopen = true;
        Queue.Wake();
    }

    /// <summary>
    /// Writes what is queued and stops the writer, waiting at most
    /// <paramref name="wait"/>; past that the target is aborted and what is
    /// still queued is counted as dropped. Returns whether all was written.
    /// </summary>
    public bool Complete(TimeSpan wait)
    {
        BeginComplete();
        return EndComplete(DateTime.UtcNow + wait);
    }

    internal void BeginComplete()
    {
        completing = true;
        Queue.Wake();
    }

    internal bool EndComplete(DateTime until)
    {
        TimeSpan left = until - DateTime.UtcNow;
        if (thread.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero))
            return true;
        target.Abort();
        thread.Join(TimeSpan.FromMilliseconds(100));
        Interlocked.Add(ref discarded, Queue.Discard());
        return false;
    }

    /// <summary>Stops the writer as <see cref="Complete"/> does, within 250 ms.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
            return;
        // A writer still blocked (a pipe) keeps the ring: it may yet take from it.
        if (Complete(TimeSpan.FromMilliseconds(250)))
            Queue.Dispose();
    }

    private void Drain()
    {
        try
        {
            while (true)
            {
                if (reopen)
                {
                    reopen = false;
                    target.Reopen();
                }
                int n = Queue.Take(batch);
                if (n > 0)
                {
                    ReadOnlySpan<byte> lines = batch.AsSpan(0, n);
                    int count = lines.Count((byte)'\n');
                    int lost;
                    try
                    {
                        lost = target.Write(lines);
                    }
#pragma warning disable CA1031 // an output's own fault loses its lines, never the sensor (this thread's exception would end the process)
                    catch (Exception e)
#pragma warning restore CA1031
                    {
                        lost = count;
                        unexpected = $"{e.GetType().Name}: {e.Message}";
                    }
                    Interlocked.Add(ref written, count - lost);
                    Interlocked.Add(ref failed, lost);
                    continue;
                }
                if (completing)
                    break;
                target.Tick(DateTime.UtcNow);
                Queue.Wait(TimeSpan.FromSeconds(1));
            }
        }
        finally
        {
            target.Dispose();
        }
    }
}
