using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// The last step of every event: the action log keeps each action whatever
/// the filter shows, the process's details are read from /proc when it is
/// first shown, then the filter, the per-run sequence number (event.sequence)
/// and the sink.
/// </summary>
public sealed class EventEmitter
{
    private readonly ProcessTable table;
    private readonly IEventSink sink;
    private readonly EventFilter filter;
    private readonly ActionLog? actionLog;
    private long sequence;

    /// <param name="table">Where a shown process's details are completed.</param>
    /// <param name="sink">Where events that pass the filter go.</param>
    /// <param name="filter">What `guard watch` shows.</param>
    /// <param name="actionLog">Keeps every action event for `guard status`; null keeps none.</param>
    /// <param name="counters">Counts findings, actions and refused hold attempts for the metrics, whatever the filter shows; null counts none.</param>
    public EventEmitter(ProcessTable table, IEventSink sink, EventFilter filter, ActionLog? actionLog = null, MetricCounters? counters = null)
    {
        this.table = table;
        this.sink = sink;
        this.filter = filter;
        this.actionLog = actionLog;
        Counters = counters;
    }

    /// <summary>The metrics' counters this emitter counts into; null when metrics are off.</summary>
    public MetricCounters? Counters { get; }

    /// <summary>Events handed to the sink so far.</summary>
    public long EventsEmitted { get; private set; }

    /// <summary>Events handed to the sink so far, indexed by <see cref="EventType"/>.</summary>
    public long[] EmittedByType { get; } = new long[Enum.GetValues<EventType>().Length];

    /// <summary>Logs, filters, numbers and writes one event. The sink must copy what it keeps: events are reused.</summary>
    public void Emit(SensorEvent e)
    {
        if (e is ActionEvent action)
            actionLog?.Append(action);
        if (Counters is { } counters)
            Count(counters, e);
        if (e.Process is { } process)
        {
            table.EnsureDetails(process);
            if (process.Parent is { } parent)
                table.EnsureDetails(parent);
        }
        if (!filter.Matches(e))
            return;
        e.Sequence = ++sequence;
        EventsEmitted++;
        EmittedByType[(int)e.Type]++;
        sink.Write(e);
    }

    private static void Count(MetricCounters counters, SensorEvent e)
    {
        switch (e)
        {
            case AlertEvent alert:
                counters.Findings.Add(alert.Rule);
                break;
            case ProcessDenialEvent denial when denial.Enforced:
                counters.Denials.Add("confine-" + denial.What);
                break;
            case ActionEvent action:
                counters.Actions.Add(action.Action, action.Succeeded ? "success" : "failure");
                if (action.Attempt is { } attempt)
                    counters.Denials.Add("hold", (long)attempt.Count);
                break;
            case ConfineEvent { WouldDeny: false } confine:
                counters.Denials.Add("confine", (long)confine.Count);
                break;
        }
    }
}
