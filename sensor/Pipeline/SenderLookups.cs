using System.Collections.Concurrent;
using System.Diagnostics;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;
using Guard.Sensor.Response;

namespace Guard.Sensor.Pipeline;

/// <summary>One probe asked for: which process, and which of its sockets carried the finding.</summary>
/// <param name="Id">The caller's id for it.</param>
/// <param name="Pid">The process.</param>
/// <param name="StartTicks">Its start, clock ticks since boot.</param>
/// <param name="ExceptCookie">The cookie of the socket the finding is about (0: none).</param>
/// <param name="ExceptInode">The inode of the socket the finding is about (0: none).</param>
/// <param name="Deadline">When the answer is due (a <see cref="Stopwatch"/> timestamp): time in the queue counts.</param>
/// <param name="Needle">The relayed bytes a spool file must hold to have fed the process (<see cref="RelaySenders.Needle"/>).</param>
public readonly record struct SenderLookup(long Id, int Pid, long StartTicks, ulong ExceptCookie, ulong ExceptInode, long Deadline, byte[] Needle);

/// <summary>
/// Probes processes for the local connections they accepted
/// (<see cref="InboundConnections"/>) on a thread of its own, so that
/// reading a hostile process's sockets and every process's descriptors never
/// holds up the thread that drains the ring. Bounded: at most
/// <see cref="QueueCapacity"/> waiting, each answered within
/// <see cref="TimeLimit"/>; a full queue refuses (counted in <see cref="Dropped"/>),
/// a late answer says so (counted in <see cref="TimedOut"/>). Answers wait in
/// a queue for the draining thread, which <c>wake</c> rouses.
/// </summary>
public sealed class SenderLookups : IDisposable
{
    /// <summary>Probes waiting at most.</summary>
    public const int QueueCapacity = 32;

    /// <summary>How long a probe may take from being asked for, queue wait included.</summary>
    public static readonly TimeSpan TimeLimit = TimeSpan.FromMilliseconds(500);

    private readonly BlockingCollection<SenderLookup> requests = new(QueueCapacity);
    private readonly ConcurrentQueue<(SenderLookup Lookup, PeerProbe Probe)> answers = new();
    private readonly Func<int, GuardSockOwner?> connectedBy;
    private readonly Func<int, GuardUnixHead?> unixHead;
    private readonly Func<int, GuardUnixDgramHeads?> dgramHeads;
    private readonly bool unixCaptured;
    private readonly Action wake;
    private readonly Thread thread;
    private long dropped;
    private long timedOut;
    private volatile string? stopped;

    /// <summary>
    /// Starts the thread; <paramref name="connectedBy"/>, <paramref name="unixHead"/> and
    /// <paramref name="dgramHeads"/> ask the kernel what it recorded of a socket
    /// (<paramref name="unixCaptured"/>: unix sockets are captured), <paramref name="wake"/>
    /// rouses the draining thread.
    /// </summary>
    public SenderLookups(Func<int, GuardSockOwner?> connectedBy, Func<int, GuardUnixHead?> unixHead, Func<int, GuardUnixDgramHeads?> dgramHeads, bool unixCaptured, Action wake)
    {
        this.connectedBy = connectedBy;
        this.unixHead = unixHead;
        this.dgramHeads = dgramHeads;
        this.unixCaptured = unixCaptured;
        this.wake = wake;
        // A thread of its own: probing moves it between network namespaces.
        thread = new Thread(Run) { IsBackground = true, Name = "guard-relay-lookups" };
        thread.Start();
    }

    /// <summary>Probes refused because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref dropped);

    /// <summary>Probes that ran past their deadline.</summary>
    public long TimedOut => Interlocked.Read(ref timedOut);

    /// <summary>Queues a probe; false (counted) when the queue is full or the thread has stopped.</summary>
    public bool TryAsk(SenderLookup lookup)
    {
        if (stopped is null && !requests.IsAddingCompleted && requests.TryAdd(lookup))
            return true;
        Interlocked.Increment(ref dropped);
        return false;
    }

    /// <summary>The next answer, if one is ready; call from the draining thread.</summary>
    public bool TryTake(out SenderLookup lookup, out PeerProbe probe)
    {
        bool got = answers.TryDequeue(out (SenderLookup Lookup, PeerProbe Probe) answer);
        (lookup, probe) = answer;
        return got;
    }

    /// <summary>Why the thread stopped taking probes (it could not come back to the sensor's network namespace); null while it runs.</summary>
    public string? Stopped => stopped;

    private void Run()
    {
        InboundConnections inbound;
        try
        {
            inbound = new InboundConnections(connectedBy, unixHead, dgramHeads, unixCaptured);
        }
        catch (SensorException e)
        {
            stopped = e.Message;
            return;
        }
        using (inbound)
        {
            foreach (SenderLookup lookup in requests.GetConsumingEnumerable())
            {
                PeerProbe probe;
                try
                {
                    probe = Stopwatch.GetTimestamp() > lookup.Deadline
                        ? new PeerProbe(lookup.Pid, lookup.StartTicks, false, [], ["it waited past its time limit in the queue"])
                        : inbound.Probe(lookup.Pid, lookup.StartTicks, lookup.ExceptCookie, lookup.ExceptInode, lookup.Deadline, lookup.Needle);
                }
                catch (StrandedThreadException e)
                {
                    stopped = e.Message;
                    probe = new PeerProbe(lookup.Pid, lookup.StartTicks, false, [], [e.Message]);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or SensorException)
                {
                    probe = new PeerProbe(lookup.Pid, lookup.StartTicks, false, [], [e.Message]);
                }
                if (Stopwatch.GetTimestamp() > lookup.Deadline)
                {
                    Interlocked.Increment(ref timedOut);
                    if (!probe.Gone && probe.Shortfalls.Count == 0)
                        probe = probe with { Shortfalls = [$"the probe took longer than {TimeLimit.TotalMilliseconds:F0} ms"] };
                }
                answers.Enqueue((lookup, probe));
                wake();
                if (stopped is not null)
                    return;
            }
        }
    }

    /// <summary>Stops taking probes and waits up to a second for the one under way.</summary>
    public void Dispose()
    {
        requests.CompleteAdding();
        thread.Join(TimeSpan.FromSeconds(1));
        if (!thread.IsAlive)
            requests.Dispose();
    }
}
