using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// Turns ring buffer drops into an alert a person sees (rule
/// <see cref="Rule"/>): when records are lost faster than the configured rate
/// (<c>--drop-alert-rate N/s</c>) between two samples, an alert says how many
/// were lost since the last one, by kind, and the worst rate seen; at most
/// one alert every <see cref="MinimumGap"/>. Drops that cross the rate while
/// an alert may not be sent yet are kept and sent when it may, even if the
/// flood has stopped by then, so a burst is never reported late by more than
/// the gap nor lost. Fed by the draining thread, about once a second.
/// </summary>
public sealed class RingDropAlerts
{
    /// <summary>The alert's rule name (rule.name, event.action).</summary>
    public const string Rule = "ring-drops";

    /// <summary>The least time between two alerts.</summary>
    public static readonly TimeSpan MinimumGap = TimeSpan.FromMinutes(1);

    private readonly long threshold;
    private readonly EventEmitter emitter;
    private readonly long gapNs;
    private ulong[]? previous;
    private long previousNs;
    private ulong[]? atLastAlert;
    private long lastAlertNs;
    private bool alerted;
    private bool crossed;
    private double peak;

    /// <summary>Alerts through <paramref name="emitter"/> when more than <paramref name="perSecond"/> records a second are lost (at least 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The rate is not above 0.</exception>
    public RingDropAlerts(long perSecond, EventEmitter emitter)
        : this(perSecond, emitter, MinimumGap)
    {
    }

    /// <summary>As the public constructor, with another least gap between alerts (tests).</summary>
    internal RingDropAlerts(long perSecond, EventEmitter emitter, TimeSpan gap)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(perSecond);
        threshold = perSecond;
        this.emitter = emitter;
        gapNs = (long)gap.TotalNanoseconds;
    }

    /// <summary>Alerts sent so far.</summary>
    public long Sent { get; private set; }

    /// <summary>
    /// One sample of the kernel's drop counters (per <see cref="RecordKind"/>,
    /// totals since load) at <paramref name="nowNs"/> (CLOCK_BOOTTIME); alerts when due.
    /// </summary>
    public void Sample(ulong[] dropsByKind, long nowNs)
    {
        if (previous is null)
        {
            previous = (ulong[])dropsByKind.Clone();
            atLastAlert = (ulong[])dropsByKind.Clone();
            previousNs = nowNs;
            return;
        }
        double seconds = (nowNs - previousNs) / 1e9;
        if (seconds <= 0)
            return;
        double rate = (Sum(dropsByKind) - Sum(previous)) / seconds;
        if (rate > threshold)
        {
            crossed = true;
            peak = Math.Max(peak, rate);
        }
        dropsByKind.CopyTo(previous, 0);
        previousNs = nowNs;
        if (crossed && (!alerted || nowNs - lastAlertNs >= gapNs))
            Alert(dropsByKind, nowNs);
    }

    private void Alert(ulong[] drops, long nowNs)
    {
        ulong lost = Sum(drops) - Sum(atLastAlert!);
        string byKind = string.Join(", ", drops.Select((n, kind) => (Kind: (RecordKind)kind, Lost: n - atLastAlert![kind]))
            .Where(x => x.Lost > 0).Select(x => string.Create(CultureInfo.InvariantCulture, $"{EventNames.Of(x.Kind)} {x.Lost}")));
        long windowSeconds = alerted ? (nowNs - lastAlertNs) / 1_000_000_000 : 0;
        var alert = new AlertEvent
        {
            Rule = Rule,
            Description = "the kernel's ring buffer lost records faster than the alert rate: events are missing (a flood, or a reader too slow; raise --ring-size)",
            RequestedAction = RuleAction.Alert,
            AboutSensor = true,
            TimeNs = nowNs,
            Evidence =
            [
                new("dropped", lost.ToString(CultureInfo.InvariantCulture)),
                new("dropped_by_kind", byKind),
                new("peak_per_second", ((long)Math.Ceiling(peak)).ToString(CultureInfo.InvariantCulture)),
                new("threshold_per_second", threshold.ToString(CultureInfo.InvariantCulture)),
                new("window_seconds", windowSeconds.ToString(CultureInfo.InvariantCulture)),
            ],
        };
        drops.CopyTo(atLastAlert!, 0);
        alerted = true;
        crossed = false;
        peak = 0;
        lastAlertNs = nowNs;
        Sent++;
        emitter.Emit(alert);
    }

    private static ulong Sum(ulong[] values)
    {
        ulong total = 0;
        foreach (ulong v in values)
            total += v;
        return total;
    }
}
