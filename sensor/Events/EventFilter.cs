namespace Guard.Sensor.Events;

/// <summary>What `guard watch` prints: --type, --pid (with descendants), --job. Heartbeats always pass.</summary>
public sealed record EventFilter
{
    /// <summary>Types shown when --type is not given: everything but fork, which doubles the volume.</summary>
    public static readonly IReadOnlySet<EventType> DefaultTypes = new HashSet<EventType>
    {
        EventType.Exec, EventType.Exit, EventType.Connect, EventType.Payload, EventType.Dns, EventType.Gpu, EventType.Heartbeat,
        EventType.Action, EventType.Alert, EventType.Confine,
    };

    public IReadOnlySet<EventType> Types { get; init; } = DefaultTypes;

    public int? Pid { get; init; }

    public string? Job { get; init; }

    public bool Matches(SensorEvent e)
    {
        if (e.Type is EventType.Heartbeat or EventType.Alert or EventType.Action)
            return true; // health and findings are never filtered away
        if (!Types.Contains(e.Type))
            return false;
        if (Pid is int pid && (e.Process is null || !e.Process.DescendsFrom(pid)))
            return false;
        if (Job is { } job && e.Process?.Membership.Id != job)
            return false;
        return true;
    }
}
