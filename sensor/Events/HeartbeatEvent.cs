namespace Guard.Sensor.Events;

/// <summary>The periodic health metric: a drop is never silent.</summary>
public sealed class HeartbeatEvent : SensorEvent
{
    public override EventType Type => EventType.Heartbeat;

    public long Events { get; internal set; }

    public ulong[] DropsByKind { get; internal set; } = [];

    public ulong Drops => DropsByKind.Aggregate(0UL, (a, b) => a + b);

    public long DecodeFailures { get; internal set; }

    /// <summary>Exceptions detectors threw on hostile input so far, each caught (the event went unjudged, the sensor went on).</summary>
    public long DetectorFaults { get; internal set; }

    public int Processes { get; internal set; }

    /// <summary>Executables not hashed because the hash queue was full, since start.</summary>
    public long HashesDropped { get; internal set; }

    /// <summary>Executables whose read took over the hash time limit, since start.</summary>
    public long HashesTimedOut { get; internal set; }

    /// <summary>Relay lookups not made because their queue was full (the finding alerted and acted on no one).</summary>
    public long RelayLookupsDropped { get; internal set; }

    /// <summary>Relay lookups that ran past their time limit (their findings acted on no one).</summary>
    public long RelayLookupsTimedOut { get; internal set; }

    public double UptimeSeconds { get; internal set; }

    /// <summary>Each output's lines written, dropped (queue full) and failed, since start.</summary>
    public IReadOnlyList<OutputHealth> Outputs { get; internal set; } = [];
}
