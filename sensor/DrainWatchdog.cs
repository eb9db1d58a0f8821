using Guard.Sensor.Interop;
using Microsoft.Extensions.Hosting.Systemd;

namespace Guard.Sensor;

/// <summary>
/// Notices a sensor whose thread that drains the ring has stopped coming back
/// (a stdout nobody reads, a hung call), from a thread of its own, since the
/// stalled thread cannot say so itself. While the drain keeps up it tells
/// systemd (sd_notify <c>WATCHDOG=1</c>, so a unit with <c>WatchdogSec=</c>
/// restarts a hung sensor; its enforcement stays pinned meanwhile) and stamps
/// the sensor's registration, which `guard status` reads; once the drain is
/// late by more than <see cref="StallLimit"/> it stops both and reports the
/// stall once through the callback given.
/// </summary>
public sealed class DrainWatchdog : IDisposable
{
    /// <summary>What <c>WatchdogSec=</c> sets: systemd's deadline in microseconds (sd_watchdog_enabled(3)).</summary>
    private const string WatchdogUsecVariable = "WATCHDOG_USEC";

    /// <summary>The pid systemd meant <see cref="WatchdogUsecVariable"/> for; unset means this process.</summary>
    private const string WatchdogPidVariable = "WATCHDOG_PID";

    private readonly ISystemdNotifier notifier;
    private readonly Action<DateTimeOffset>? markDrained;
    private readonly Action<TimeSpan> onStall;
    private readonly Thread thread;
    private readonly ManualResetEventSlim stopping = new();
    private long lastDrainNs;
    private long notifyFailures;
    private bool stalled;
    private int stoppingSaid;

    /// <summary>
    /// Starts watching; the drain counts as fresh now. <paramref name="stallLimit"/>
    /// (at least 100 ms) is how late the drain may be before it counts as
    /// stalled; under systemd's watchdog the shorter of it and
    /// <c>WATCHDOG_USEC</c> applies. <paramref name="markDrained"/> stamps the
    /// registration (its failures are the callee's to swallow);
    /// <paramref name="onStall"/> is called on the watchdog's thread, once for
    /// each stall, with how late the drain is.
    /// </summary>
    public DrainWatchdog(TimeSpan stallLimit, ISystemdNotifier notifier, Action<DateTimeOffset>? markDrained, Action<TimeSpan> onStall)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stallLimit, TimeSpan.FromMilliseconds(100));
        this.notifier = notifier;
        this.markDrained = markDrained;
        this.onStall = onStall;
        SystemdDeadline = notifier.IsEnabled ? ReadSystemdDeadline() : null;
        StallLimit = SystemdDeadline is { } deadline && deadline < stallLimit ? deadline : stallLimit;
        lastDrainNs = Libc.NowNs(Libc.ClockBoottime);
        thread = new Thread(Watch) { IsBackground = true, Name = "guard drain watchdog" };
        thread.Start();
    }

    /// <summary>How late the drain may be before this sensor counts as stalled.</summary>
    public TimeSpan StallLimit { get; }

    /// <summary>systemd's watchdog deadline for this process (<c>WatchdogSec=</c>), or null when it keeps none.</summary>
    public TimeSpan? SystemdDeadline { get; }

    /// <summary>Whether the drain is late by more than <see cref="StallLimit"/> as of the last check.</summary>
    public bool Stalled => Volatile.Read(ref stalled);

    /// <summary>How late the drain is now: the time since the draining thread last came round its loop (any thread may ask).</summary>
    public TimeSpan Late => TimeSpan.FromTicks(Math.Max(0, Libc.NowNs(Libc.ClockBoottime) - Volatile.Read(ref lastDrainNs)) / 100);

    /// <summary>Called by the draining thread each time round its loop: cheap, no allocation.</summary>
    public void Drained(long nowNs) => Volatile.Write(ref lastDrainNs, nowNs);

    /// <summary>Tells systemd the sensor is attached and draining (sd_notify <c>READY=1</c>).</summary>
    public void Ready() => Notify(ServiceState.Ready);

    /// <summary>Messages to systemd that could not be sent (its socket gone or refusing).</summary>
    public long NotifyFailures => Interlocked.Read(ref notifyFailures);

    /// <summary>
    /// Sends one sd_notify message. A notify socket that went away or refuses
    /// (systemd restarting, a container's notify proxy gone) costs the message,
    /// counted, never the sensor: a watchdog that cannot be told is what systemd acts on.
    /// </summary>
    private void Notify(ServiceState state)
    {
        try
        {
            notifier.Notify(state);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or ObjectDisposedException)
        {
            Interlocked.Increment(ref notifyFailures);
        }
    }

    private void Watch()
    {
        // A ping at a quarter of the limit keeps systemd's deadline with room to spare (it asks for half).
        var period = TimeSpan.FromTicks(StallLimit.Ticks / 4);
        var ping = new ServiceState("WATCHDOG=1");
        while (!stopping.Wait(period))
        {
            long lateNs = Libc.NowNs(Libc.ClockBoottime) - Volatile.Read(ref lastDrainNs);
            if (lateNs <= (long)StallLimit.TotalNanoseconds)
            {
                Volatile.Write(ref stalled, false);
                markDrained?.Invoke(DateTimeOffset.UtcNow);
                Notify(ping);
            }
            else if (!Stalled)
            {
                Volatile.Write(ref stalled, true);
                try
                {
                    onStall(TimeSpan.FromTicks(lateNs / 100));
                }
                catch (IOException)
                {
                    // Its stderr gone too: the registration's stamp still tells `guard status`.
                }
            }
        }
    }

    private static TimeSpan? ReadSystemdDeadline()
    {
        if (Environment.GetEnvironmentVariable(WatchdogPidVariable) is { Length: > 0 } pid
            && pid != Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture))
            return null;
        return ulong.TryParse(Environment.GetEnvironmentVariable(WatchdogUsecVariable), out ulong usec) && usec > 0
            ? TimeSpan.FromMicroseconds((long)Math.Min(usec, (ulong)TimeSpan.MaxValue.TotalMicroseconds / 2))
            : null;
    }

    /// <summary>
    /// Stops the pings and tells systemd the sensor is stopping (sd_notify
    /// <c>STOPPING=1</c>), after any ping under way (waiting at most 100 ms for
    /// it); from any thread, once: a stop that runs out of time (StopDeadline)
    /// says so before it ends the process.
    /// </summary>
    public void Stopping()
    {
        if (Interlocked.Exchange(ref stoppingSaid, 1) != 0)
            return;
        stopping.Set();
        if (Thread.CurrentThread != thread)
            thread.Join(TimeSpan.FromMilliseconds(100));
        Notify(ServiceState.Stopping);
    }

    /// <summary>Stops the watchdog and tells systemd the sensor is stopping (<see cref="Stopping"/>).</summary>
    public void Dispose()
    {
        Stopping();
        thread.Join();
        stopping.Dispose();
    }
}
