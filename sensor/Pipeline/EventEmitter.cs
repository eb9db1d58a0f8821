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
    public EventEmitter(ProcessTable table, IEventSink sink, EventFilter filter, ActionLog? actionLog = null)
    {
        this.table = table;
        this.sink = sink;
        this.filter = filter;
        this.actionLog = actionLog;
    }

    /// <summary>Events handed to the sink so far.</summary>
    public long EventsEmitted { get; private set; }

    /// <summary>Events handed to the sink so far, indexed by <see cref="EventType"/>.</summary>
    public long[] EmittedByType { get; } = new long[Enum.GetValues<EventType>().Length];

    /// <summary>Logs, filters, numbers and writes one event. The sink must copy what it keeps: events are reused.</summary>
    public void Emit(SensorEvent e)
    {
        if (e is ActionEvent action)
            actionLog?.Append(action);
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
}
